{#-
    Append one row to raw.privacy_audit_log from a dbt hook. It never updates
    or deletes (the table is append-only) and never takes a subject: hook rows
    concern a build or the key, not a person.

    The row records a fresh audit id, the time, the Spark driver's OS user,
    the key version (var pseudonym_key_version), the project's git commit
    (SANTEFLUX_GIT_COMMIT, exported by the Makefile; 'unknown' otherwise) and
    this dbt invocation's id in `details`. String values are escaped for a
    Spark SQL literal; none of them comes from user input.

    Arguments:
      operation: audit operation name, e.g. 'dbt_build' or 'key_rotation'.
      status: 'success' or 'failed'.
      relations_touched_json: JSON object text, relation name -> row count.
      row_count: total rows touched (an integer).
      details: dict of extra, non-personal facts, stored as JSON.
-#}
{% macro append_privacy_audit_row(operation, status, relations_touched_json, row_count, details) %}
    {% do create_privacy_audit_log() %}
    {% set all_details = dict(details, dbt_invocation_id=invocation_id) %}
    {% do run_query(
        "insert into " ~ restricted_table('privacy_audit_log') ~ " select lower(replace(uuid(), '-', '')), current_timestamp(), "
        ~ "reflect('java.lang.System', 'getProperty', 'user.name'), "
        ~ sql_string_literal(operation) ~ ", cast(null as string), "
        ~ sql_string_literal(relations_touched_json) ~ ", " ~ row_count | int ~ ", "
        ~ var('pseudonym_key_version') | int ~ ", "
        ~ sql_string_literal(env_var('SANTEFLUX_GIT_COMMIT', 'unknown')) ~ ", "
        ~ sql_string_literal(status) ~ ", " ~ sql_string_literal(tojson(all_details))) %}
{% endmacro %}
