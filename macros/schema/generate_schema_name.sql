{#-
    Production targets (var `verbatim_schema_targets`: local, thrift) use a
    configured +schema verbatim. The privacy zones (raw, anonymized,
    analytics) are access-control boundaries, so their names must not depend
    on the target as dbt's default `<target_schema>_<custom>` would.
    Any other target (e.g. `dev`) builds into `<target name>_<schema>`, so a
    development build on a shared metastore never overwrites a production
    zone.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set schema_name = target.schema if custom_schema_name is none else custom_schema_name | trim -%}
    {%- if target.name in var('verbatim_schema_targets') -%}
        {{ schema_name }}
    {%- else -%}
        {{ target.name ~ '_' ~ schema_name }}
    {%- endif -%}
{%- endmacro %}
