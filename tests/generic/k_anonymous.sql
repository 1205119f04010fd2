{#-
    Generic test: every combination of the quasi-identifiers that occurs in
    the model occurs at least k times. Fails with one row per offending
    combination (NULLs form a group like any value).

    Arguments: model (supplied by dbt); quasi_identifiers: list of columns;
    k: minimum group size (default: var k_anonymity_k).
-#}
{% test k_anonymous(model, quasi_identifiers, k=none) %}

{%- set min_size = k if k is not none else var('k_anonymity_k') %}

select
    {{ quasi_identifiers | join(', ') }},
    count(*) as group_size
from {{ model }}
group by {{ quasi_identifiers | join(', ') }}
having count(*) < {{ min_size }}

{% endtest %}
