{#-
    SQL expression that yields the pseudonymization key inside Spark.

    The key is read at run time from the Spark driver's own environment
    (DBT_ENV_SECRET_PSEUDONYM_KEY) with Spark's native `reflect`. Nothing is
    substituted into the SQL text, so the key appears in no compiled SQL, log,
    query plan, view text or metastore entry. (Spark's `${env:...}`
    substitution was rejected: it pastes the key into the statement, which
    then shows up in EXPLAIN output, error messages and view definitions.)

    In session mode the driver is the dbt process; on a Thrift server it is
    the server's environment.
-#}
{% macro pseudonym_key() -%}
    reflect('java.lang.System', 'getenv', 'DBT_ENV_SECRET_PSEUDONYM_KEY')
{%- endmacro %}
