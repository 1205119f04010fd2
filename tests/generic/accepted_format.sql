{#-
    Fails for every non-null value that does not match `regex` (Java regex,
    anchored by the caller).
    Arguments: model, column_name (supplied by dbt); regex: the pattern.
-#}
{% test accepted_format(model, column_name, regex) %}

select {{ column_name }} as offending_value
from {{ model }}
where {{ column_name }} is not null
    and not {{ column_name }} rlike '{{ regex | replace("\\", "\\\\") | replace("'", "\\'") }}'

{% endtest %}
