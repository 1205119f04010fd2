{#-
    SQL expression giving the rank of the tier named in `column` (NULL for an
    unknown tier), built from the subscription_tiers seed. Used to break ties
    without joining in staging.
-#}
{% macro tier_rank(column) -%}
    {%- set tiers = subscription_tiers() -%}
    {%- if tiers | length == 0 -%}
        cast(null as int)
    {%- else -%}
        case {{ column }}
        {%- for tier in tiers %}
            when '{{ tier.name }}' then {{ tier.rank }}
        {%- endfor %}
        end
    {%- endif -%}
{%- endmacro %}
