{#-
    Generic test: every combination of the quasi-identifiers that occurs in
    the model is shared by at least k people. Fails with one row per
    offending combination (NULLs form a group like any value).

    People are counted as distinct values of the person key, so a relation
    with many rows per member (events) is held to the same rule as one row
    per member. Both lists default to the model's own declaration in its
    YAML meta (`quasi_identifiers`, `person_key`), the one place the attack
    test tests/python/privacy/test_linkage_attacks.py also reads.

    Arguments: model (supplied by dbt); quasi_identifiers: list of columns
    (default: meta.quasi_identifiers); person_key: column identifying a
    person (default: meta.person_key; none = one row per person);
    k: minimum group size (default: var k_anonymity_k).
-#}
{% test k_anonymous(model, quasi_identifiers=none, person_key=none, k=none) %}

{%- set meta = {} %}
{%- if execute %}
    {%- set nodes = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
        | selectattr('alias', 'equalto', model.identifier) | list %}
    {%- if nodes | length == 1 %}
        {%- set meta = nodes[0].config.meta %}
    {%- endif %}
{%- endif %}
{%- set qis = quasi_identifiers if quasi_identifiers is not none else meta.get('quasi_identifiers') %}
{%- set person = person_key if person_key is not none else meta.get('person_key') %}
{%- set min_size = k if k is not none else var('k_anonymity_k') %}
{%- if execute and not qis %}
    {{ exceptions.raise_compiler_error(
        "k_anonymous on " ~ model ~ ": no quasi_identifiers (pass them or declare meta.quasi_identifiers)") }}
{%- endif %}
{%- set qis = qis or ['1'] %}

select
    {{ qis | join(', ') }},
    count({{ 'distinct ' ~ person if person else '*' }}) as group_size
from {{ model }}
group by {{ qis | join(', ') }}
having count({{ 'distinct ' ~ person if person else '*' }}) < {{ min_size }}

{% endtest %}
