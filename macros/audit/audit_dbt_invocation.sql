{#-
    on-run-end: append one row per `dbt build`/`run`/`seed` to the restricted,
    append-only raw.privacy_audit_log (the same table scripts/sflux/audit.py
    writes detokenizations to; the column list must match its DDL, which
    tests/python/test_privacy_zones.py checks).

    The row records when, who (the OS user of the Spark driver), the dbt
    command, every relation built with its row count, the key version and the
    project's git commit (SANTEFLUX_GIT_COMMIT, exported by the Makefile;
    'unknown' otherwise). No subject: a build concerns everyone.

    Arguments:
      results: the invocation's results (supplied by dbt in on-run-end).
-#}
{% macro audit_dbt_invocation(results) %}
    {% if execute and flags.WHICH in ('run', 'build', 'seed', 'snapshot') %}
        {% do run_query('create schema if not exists raw') %}
        {% do run_query(
            'create table if not exists raw.privacy_audit_log ('
            ~ 'audit_id string, occurred_at timestamp, actor string, operation string, '
            ~ 'subject_pseudonym_id string, relations_touched string, row_count bigint, '
            ~ 'key_version int, git_commit string, status string, details string) using parquet') %}
        {% set built = [] %}
        {% set failed = [] %}
        {% for result in results if result.node.resource_type in ('model', 'seed', 'snapshot') %}
            {% if result.status in ('success', 'pass') and result.node.config.materialized != 'ephemeral' %}
                {% do built.append(result.node.relation_name) %}
            {% elif result.status not in ('success', 'pass', 'skipped') %}
                {% do failed.append(result.node.relation_name or result.node.name) %}
            {% endif %}
        {% endfor %}
        {% set counts_sql %}
            select coalesce(to_json(map_from_entries(collect_list(struct(relation, n)))), '{}') as touched,
                   coalesce(sum(n), 0) as total
            from (
                {% for relation in built %}
                select '{{ relation | replace("`", "") }}' as relation, count(*) as n from {{ relation }}
                {{ 'union all' if not loop.last }}
                {% endfor %}
                {% if built | length == 0 %}
                select cast(null as string) as relation, cast(null as bigint) as n where false
                {% endif %}
            ) as built_relations
        {% endset %}
        {% set counts = run_query(counts_sql).rows[0] %}
        {% set status = 'success' if failed | length == 0 else 'failed' %}
        {% set details = tojson({'command': flags.WHICH, 'failed': failed, 'dbt_invocation_id': invocation_id}) %}
        {% do run_query(
            "insert into raw.privacy_audit_log select '" ~ invocation_id ~ "', current_timestamp(), "
            ~ "reflect('java.lang.System', 'getProperty', 'user.name'), 'dbt_" ~ flags.WHICH ~ "', "
            ~ "cast(null as string), '" ~ counts[0] | replace("'", "\\'") ~ "', " ~ counts[1] ~ ", "
            ~ var('pseudonym_key_version') | int ~ ", '"
            ~ env_var('SANTEFLUX_GIT_COMMIT', 'unknown') | replace("'", "") ~ "', '" ~ status ~ "', '"
            ~ details | replace("\\", "\\\\") | replace("'", "\\'") ~ "'") %}
    {% endif %}
    select 1 as dbt_invocation_audited
{% endmacro %}
