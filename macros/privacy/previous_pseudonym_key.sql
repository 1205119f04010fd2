{#-
    SQL expression that yields the previous pseudonymization key inside Spark,
    during a rotation only: read like pseudonym_key, from the Spark driver's
    environment (DBT_ENV_SECRET_PSEUDONYM_KEY_PREVIOUS), never pasted into SQL.
    rekey_erasure_register decrypts the register's records with it.
-#}
{% macro previous_pseudonym_key() -%}
    reflect('java.lang.System', 'getenv', 'DBT_ENV_SECRET_PSEUDONYM_KEY_PREVIOUS')
{%- endmacro %}
