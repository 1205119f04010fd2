{#-
    Called by register_pseudonym_key when it records a new key version:
    re-keys raw.erasure_register, holding the previous and the new key.

    The register knows an erased subject by their pseudonym under the key of
    the day (the loader skips landing lines that pseudonymize to it), so after
    a rotation it must know them under the new key too, or re-loading an old
    landing file would bring them back. Each row also holds the erasure plan,
    the user id included, AES-GCM encrypted under a secret derived from the
    key (erasure_record_secret). Here each subject's latest row of the
    previous version is decrypted with the previous key
    (DBT_ENV_SECRET_PSEUDONYM_KEY_PREVIOUS), and appended again under the new
    version: new pseudonym, record encrypted under the new key. Nothing is
    rewritten (the register stays append-only), and a rerun appends only what
    is missing, so a build killed half-way is finished by the next one.

    It stops the build when the register holds anyone and the previous key is
    missing or is not the registered previous version (checked by
    fingerprint), or when a row has no encrypted record (written before the
    register held one) and so cannot be re-keyed. Returns the number of
    subjects re-keyed.

    Arguments:
      previous_version: the key version registered so far (an integer).
      version: the new key version (an integer).
-#}
{% macro rekey_erasure_register(previous_version, version) %}
    {% set declared = restricted_table('erasure_register') %}
    {% set register = adapter.get_relation(
        database=none, schema=declared.schema, identifier=declared.identifier) %}
    {% if register is none %}
        {{ return(0) }}
    {% endif %}
    {% set columns = adapter.get_columns_in_relation(register) | map(attribute='name') | list %}
    {% set readable = 'subject_record' in columns and 'key_version' in columns %}
    {% set counts_sql %}
        select
            (
                select count(distinct subject_pseudonym_id) from {{ register }}
                where {{ 'subject_record is null or key_version is null' if readable else 'true' }}
            ) as n_unreadable,
            (
                select count(distinct subject_pseudonym_id) from {{ register }}
                where {{ 'key_version = ' ~ previous_version | int if readable else 'false' }}
            ) as n_previous,
            coalesce({{ previous_pseudonym_key() }}, 'null') = 'null' as previous_key_missing,
            coalesce((
                select max(registry.key_fingerprint)
                from {{ restricted_table('pseudonym_key_registry') }} as registry
                where registry.key_version = {{ previous_version | int }}
            ) = {{ pseudonym_key_fingerprint(previous_pseudonym_key()) }}, false) as previous_key_matches
    {% endset %}
    {% set counts = run_query(counts_sql).rows[0] %}
    {% if counts['n_unreadable'] > 0 %}
        {{ exceptions.raise_compiler_error(
            "Key rotation refused: raw.erasure_register holds " ~ counts['n_unreadable']
            ~ " erased subject(s) without an encrypted record, which no key can re-key. "
            ~ "See docs/gdpr-runbook.md (rotate the pseudonymization key).") }}
    {% endif %}
    {% if counts['n_previous'] == 0 %}
        {{ return(0) }}
    {% endif %}
    {% if counts['previous_key_missing'] or not counts['previous_key_matches'] %}
        {{ exceptions.raise_compiler_error(
            "Key rotation refused: raw.erasure_register holds " ~ counts['n_previous']
            ~ " erased subject(s) under key version " ~ previous_version ~ "; "
            ~ ("set DBT_ENV_SECRET_PSEUDONYM_KEY_PREVIOUS to the version-" ~ previous_version ~ " key"
               if counts['previous_key_missing'] else
               "DBT_ENV_SECRET_PSEUDONYM_KEY_PREVIOUS is not the version-" ~ previous_version ~ " key (fingerprint)")
            ~ " so the rotation can re-key them.") }}
    {% endif %}
    {% set rekey_sql %}
        insert into {{ register }} (subject_pseudonym_id, status, recorded_at, key_version, subject_record)
        with

        previous_rows as (

            select
                subject_pseudonym_id,
                max_by(status, recorded_at) as status,
                max(recorded_at) as recorded_at,
                max_by(subject_record, recorded_at) as subject_record
            from {{ register }}
            where key_version = {{ previous_version | int }}
            group by subject_pseudonym_id

        ),

        decrypted as (

            select
                status,
                recorded_at,
                cast(aes_decrypt(
                    unbase64(subject_record), {{ erasure_record_secret(previous_pseudonym_key()) }}, 'GCM'
                ) as string) as plan_json
            from previous_rows

        ),

        rekeyed as (

            select
                {{ pseudonymize("get_json_object(plan_json, '$.user_id')") }} as subject_pseudonym_id,
                status,
                recorded_at,
                {{ version | int }} as key_version,
                base64(aes_encrypt(
                    cast(plan_json as binary), {{ erasure_record_secret(pseudonym_key()) }}, 'GCM'
                )) as subject_record
            from decrypted

        )

        select rekeyed.*
        from rekeyed
        left anti join {{ register }} as done
            on
                rekeyed.subject_pseudonym_id = done.subject_pseudonym_id
                and done.key_version = {{ version | int }}
    {% endset %}
    {% do run_query(rekey_sql) %}
    {{ return(counts['n_previous']) }}
{% endmacro %}
