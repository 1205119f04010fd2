{#-
    SQL expression for a key's fingerprint: lowercase hex of HMAC(key, a fixed
    label). raw.pseudonym_key_registry stores it per key version, and every
    script checks its key against it before use (scripts/sflux/privacy/keys.py,
    fingerprint_sql, is the same expression). A keyed digest: it proves which
    key is in hand and reveals nothing of it.
-#}
{% macro pseudonym_key_fingerprint(key_sql) -%}
    lower(hex(hmac({{ key_sql }}, 'santeflux:pseudonym-key-fingerprint')))
{%- endmacro %}
