{#-
    on-run-start: record which pseudonymization key version this build uses,
    in the restricted table raw.pseudonym_key_registry, so a key rotation is
    visible and dated.

    The registry stores a fingerprint of the key, HMAC(key, a fixed label), not
    the key: it proves two builds used the same key without revealing it.
    A new version is also written to raw.privacy_audit_log, as operation
    `key_registration` (the first) or `key_rotation` (every later one).
    It stops the build when
      - the key changed but `pseudonym_key_version` did not (old and new
        pseudonyms would silently stop joining), or
      - the version changed and the run is not `--full-refresh` (incremental
        tables would mix pseudonyms from two keys), or
      - the version changed while raw.erasure_register holds subjects and
        the previous key is missing or wrong (see rekey_erasure_register,
        which re-keys the register before the new version is recorded).

    Arguments: none; reads var pseudonym_key_version.
-#}
{% macro register_pseudonym_key() %}
    {% if execute and flags.WHICH in ('run', 'build') %}
        {% set version = var('pseudonym_key_version') | int %}
        {% set fingerprint_sql = pseudonym_key_fingerprint(pseudonym_key()) %}
        {% set registry = restricted_table('pseudonym_key_registry') %}
        {% do run_query('create schema if not exists ' ~ registry.schema) %}
        {% do run_query(
            'create table if not exists ' ~ registry ~ ' ('
            ~ 'key_version int, key_fingerprint string, registered_at timestamp, '
            ~ 'dbt_invocation_id string) using parquet') %}
        {% set check_sql %}
            select
                max(case when registry.key_version = {{ version }} then 1 else 0 end) as version_known,
                max(case when registry.key_version = {{ version }}
                    and registry.key_fingerprint != current_key.fingerprint then 1 else 0 end) as fingerprint_differs,
                max(case when registry.key_version != {{ version }}
                    and registry.key_fingerprint = current_key.fingerprint then 1 else 0 end) as key_reused,
                max(registry.key_version) as latest_version
            from {{ registry }} as registry
            cross join (select {{ fingerprint_sql }} as fingerprint) as current_key
        {% endset %}
        {% set row = run_query(check_sql).rows[0] %}
        {% if row['fingerprint_differs'] == 1 %}
            {{ exceptions.raise_compiler_error(
                "The pseudonymization key changed but pseudonym_key_version is still " ~ version
                ~ ". Bump the var (dbt_project.yml) and run `dbt build --full-refresh`, so the rotation is recorded.") }}
        {% elif row['version_known'] != 1 %}
            {% if row['latest_version'] is not none and not flags.FULL_REFRESH %}
                {{ exceptions.raise_compiler_error(
                    "pseudonym_key_version changed from " ~ row['latest_version'] ~ " to " ~ version
                    ~ ": run `dbt build --full-refresh` so no incremental table mixes pseudonyms of two keys.") }}
            {% endif %}
            {% if row['key_reused'] == 1 %}
                {{ exceptions.raise_compiler_error(
                    "pseudonym_key_version " ~ version ~ " is new but the key is one already registered under another version: rotate the key too.") }}
            {% endif %}
            {% set previous = none if row['latest_version'] is none else row['latest_version'] | int %}
            {% set rekeyed = 0 %}
            {% if previous is not none %}
                {% set rekeyed = rekey_erasure_register(previous, version) %}
            {% endif %}
            {% do run_query(
                "insert into " ~ registry ~ " select " ~ version ~ ", " ~ fingerprint_sql
                ~ ", current_timestamp(), '" ~ invocation_id ~ "'") %}
            {% do append_privacy_audit_row(
                operation='key_registration' if previous is none else 'key_rotation',
                status='success',
                relations_touched_json=tojson({registry.render(): 1}),
                row_count=1,
                details={'command': flags.WHICH, 'previous_key_version': previous, 'key_version': version,
                    'erasure_register_rekeyed': rekeyed | int}) %}
            {% do log("Pseudonym key version " ~ version ~ " registered in " ~ registry
                ~ ("" if previous is none else " (rotated from version " ~ previous ~ "; "
                    ~ rekeyed ~ " erased subject(s) re-keyed in the erasure register)") ~ ".", info=true) %}
        {% endif %}
    {% endif %}
    select 1 as pseudonym_key_registered
{% endmacro %}
