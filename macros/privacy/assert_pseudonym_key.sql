{#-
    on-run-start guard: stop the invocation before any model runs unless the
    Spark driver sees a usable key.

    It catches the silent failure modes in which every pseudonym would be
    keyed with a public constant while all consistency tests still pass: an
    unset variable (`reflect` returns the string 'null'), Spark's redaction
    placeholder, or a trivially short key. Only verdicts leave Spark; the key
    itself is never selected.
-#}
{% macro assert_pseudonym_key() %}
    {% if execute and flags.WHICH in ('run', 'build', 'test', 'seed', 'snapshot') %}
        {% set min_length = var('pseudonym_key_min_length') | int %}
        {% set probe %}
            select
                case
                    when key_value is null or key_value = 'null' then 'missing'
                    when key_value like '%(redacted)%' then 'redacted'
                    when length(key_value) < {{ min_length }} then 'too_short'
                    else 'ok'
                end as verdict
            from (select {{ pseudonym_key() }} as key_value) as probe_input
        {% endset %}
        {% set verdict = run_query(probe).columns[0].values()[0] %}
        {% if verdict == 'missing' %}
            {{ exceptions.raise_compiler_error(
                "DBT_ENV_SECRET_PSEUDONYM_KEY is not set in the Spark driver's environment "
                ~ "(session target: the shell running dbt; thrift target: the Thrift server). "
                ~ "There is no default key: `make key` creates one in .secrets/pseudonym.key.") }}
        {% elif verdict == 'redacted' %}
            {{ exceptions.raise_compiler_error(
                "DBT_ENV_SECRET_PSEUDONYM_KEY resolved to Spark's redaction placeholder, not the key.") }}
        {% elif verdict == 'too_short' %}
            {{ exceptions.raise_compiler_error(
                "DBT_ENV_SECRET_PSEUDONYM_KEY is shorter than " ~ min_length
                ~ " characters; use a random key such as `openssl rand -hex 32`.") }}
        {% endif %}
    {% endif %}
    select 1 as pseudonym_key_checked
{% endmacro %}
