{#-
    Truncate a postcode to its leading characters, after dropping spaces and
    punctuation: '75011' -> '75', '1012 AB' -> '10'. The prefix names an area
    of tens of thousands of people instead of a street.

    Arguments:
      column: SQL expression holding the postcode.
      keep_chars: how many characters to keep (default: var postcode_keep_chars).
-#}
{% macro generalize_postcode(column, keep_chars=none) -%}
    {%- set n = keep_chars if keep_chars is not none else var('postcode_keep_chars') -%}
    nullif(left(regexp_replace(upper({{ column }}), '[^0-9A-Z]', ''), {{ n }}), '')
{%- endmacro %}
