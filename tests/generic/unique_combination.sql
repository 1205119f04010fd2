{#-
    Fails for every combination of `columns` that occurs more than once: the
    model's declared grain.
    Arguments: model (supplied by dbt); columns: list of column names.
-#}
{% test unique_combination(model, columns) %}

select
    {{ columns | join(', ') }},
    count(*) as n_rows
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
