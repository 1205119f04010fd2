{#-
    on-run-end: append one row per `dbt build`/`run`/`seed` to the restricted,
    append-only raw.privacy_audit_log (the same table scripts/sflux/privacy/audit.py
    writes exports, erasures and detokenizations to).

    The row (written by append_privacy_audit_row) records when, who, the dbt
    command, every table built with its row count, the key version and the
    project's git commit. No subject: a build concerns everyone. Views and
    ephemeral models are not counted: they store no rows, and counting a view
    would re-run its whole query (the frozen-window view scans every reading).

    Arguments:
      results: the invocation's results (supplied by dbt in on-run-end).
-#}
{% macro audit_dbt_invocation(results) %}
    {% if execute and flags.WHICH in ('run', 'build', 'seed', 'snapshot') %}
        {% set built = [] %}
        {% set failed = [] %}
        {% for result in results if result.node.resource_type in ('model', 'seed', 'snapshot') %}
            {% if result.status in ('success', 'pass') and result.node.config.materialized not in ('ephemeral', 'view') %}
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
        {% do append_privacy_audit_row(
            operation='dbt_' ~ flags.WHICH,
            status='success' if failed | length == 0 else 'failed',
            relations_touched_json=counts[0],
            row_count=counts[1],
            details={'command': flags.WHICH, 'failed': failed}) %}
    {% endif %}
    select 1 as dbt_invocation_audited
{% endmacro %}
