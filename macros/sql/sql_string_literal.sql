{#-
    Render a value as a Spark SQL string literal: backslashes and single
    quotes escaped (Spark reads backslash escapes inside quotes), None as
    NULL. For the few statements dbt hooks must build as text because
    run_query takes no bind parameters; values still never come from users.

    Arguments:
      value: any value; rendered with `string`, or NULL when none.
-#}
{% macro sql_string_literal(value) -%}
    {%- if value is none -%}
        null
    {%- else -%}
        '{{ value | string | replace("\\", "\\\\") | replace("'", "\\'") }}'
    {%- endif -%}
{%- endmacro %}
