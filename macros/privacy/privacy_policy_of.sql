{#-
    The privacy policy declared for one column of a source or model in YAML,
    as a dict with keys pii, treatment and output (None when not declared).
    dbt 1.11 keeps column `meta` either at the top level or under `config`,
    depending on how the YAML spells it; both are read.

    Arguments:
      column_node: the column entry from the graph (may be None).
-#}
{% macro privacy_policy_of(column_node) %}
    {%- set meta = {} -%}
    {%- if column_node is not none -%}
        {%- do meta.update(column_node.get('meta') or {}) -%}
        {%- do meta.update((column_node.get('config') or {}).get('meta') or {}) -%}
    {%- endif -%}
    {{ return({
        'pii': meta.get('pii'),
        'treatment': meta.get('treatment'),
        'output': meta.get('output'),
        'keep_chars': meta.get('keep_chars'),
    }) }}
{% endmacro %}
