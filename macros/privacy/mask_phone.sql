{#-
    Mask a phone number, keeping only its last four digits: '+33 6 12 34 56 78'
    -> '***5678'. Formatting, country code and length are dropped, so the mask
    says nothing about the number but its tail. Fewer than six digits is not a
    phone number: NULL.

    Arguments:
      column: SQL expression holding the phone number.
-#}
{% macro mask_phone(column) -%}
    case
        when length(regexp_replace({{ column }}, '[^0-9]', '')) >= 6
            then concat('***', right(regexp_replace({{ column }}, '[^0-9]', ''), 4))
    end
{%- endmacro %}
