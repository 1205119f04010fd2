{#-
    Fails for every non-null value outside [min_value, max_value] (inclusive).
    Arguments: model, column_name (supplied by dbt); min_value, max_value.
-#}
{% test value_between(model, column_name, min_value, max_value) %}

select {{ column_name }} as offending_value
from {{ model }}
where {{ column_name }} < {{ min_value }} or {{ column_name }} > {{ max_value }}

{% endtest %}
