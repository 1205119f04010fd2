{#-
    SQL expression for the AES-256 key (HMAC-SHA256 output, 32 bytes) that
    encrypts the records of raw.erasure_register, derived from a
    pseudonymization key with its own label, so the record key rotates with
    the pseudonym key. scripts/sflux/privacy/keys.py (record_secret_sql) is
    the same expression.
-#}
{% macro erasure_record_secret(key_sql) -%}
    hmac({{ key_sql }}, 'santeflux:erasure-register-record')
{%- endmacro %}
