{#-
    Use a configured +schema verbatim. The privacy zones (raw, anonymized,
    analytics) are access-control boundaries, so their names must not depend
    on the target as dbt's default `<target_schema>_<custom>` would.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
