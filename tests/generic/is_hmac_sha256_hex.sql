{#-
    Fails for every non-null value that is not a lowercase 64-character hex
    string, the shape of pseudonymize()'s output. A raw id that slipped
    through unhashed fails it.
    Arguments: model, column_name (supplied by dbt).
-#}
{% test is_hmac_sha256_hex(model, column_name) %}

select {{ column_name }} as offending_value
from {{ model }}
where {{ column_name }} is not null
    and not {{ column_name }} rlike '^[0-9a-f]{64}$'

{% endtest %}
