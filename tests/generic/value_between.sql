{#-
    Fails for every non-null value outside [min_value, max_value] (inclusive).
    Arguments: model, column_name (supplied by dbt); min_value; max_value
    (optional: no upper bound when omitted).
-#}
{% test value_between(model, column_name, min_value, max_value=none) %}

select {{ column_name }} as offending_value
from {{ model }}
where {{ column_name }} < {{ min_value }}
{%- if max_value is not none %}
    or {{ column_name }} > {{ max_value }}
{%- endif %}

{% endtest %}
