{#-
    The select list that carries a raw source table into the anonymized zone,
    built from each column's declared policy (`meta: {pii: ..., treatment: ...}`
    in the source YAML): changing a policy is a YAML change, not a SQL edit.

    The list comes from the YAML alone, never from describing the raw table,
    so compiling (and linting) the project needs no warehouse. Only declared
    columns are selected: a column that reaches the raw table without a
    declared policy cannot reach the anonymized zone. Such a column still
    stops every run, before any model: see assert_raw_columns_declared.
    When any column is pseudonymized, a `pseudonym_key_version` column
    records which key version produced the pseudonyms.

    Arguments:
      source_name, table_name: the dbt source table.
      relation_alias: the alias under which the model selects from it.
      columns: only these source columns (default: all declared columns).
      exclude: source columns left out (default: none), for data minimization.
-#}
{% macro apply_privacy_policies(source_name, table_name, relation_alias='source', columns=none, exclude=none) %}
    {%- if not execute -%}
        {{ return('cast(null as string) as privacy_policies_resolved_at_run_time') }}
    {%- endif -%}
    {%- if 'sources' not in graph -%}
        {{ exceptions.raise_compiler_error(
            "apply_privacy_policies reads the policies from the dbt graph, which dbt unit tests do not provide:"
            ~ " give the unit test `overrides: {macros: {apply_privacy_policies: '<select list>'}}`.") }}
    {%- endif -%}
    {%- set nodes = graph.sources.values()
        | selectattr('source_name', 'equalto', source_name)
        | selectattr('name', 'equalto', table_name) | list -%}
    {%- if nodes | length != 1 -%}
        {{ exceptions.raise_compiler_error("apply_privacy_policies: no source '" ~ source_name ~ "." ~ table_name ~ "'") }}
    {%- endif -%}
    {%- set select_list = [] -%}
    {%- set undeclared = [] -%}
    {%- set state = {'pseudonymized': false} -%}
    {%- set unknown = ((columns or []) + (exclude or [])) | reject('in', nodes[0].columns.keys() | list) | list -%}
    {%- if unknown -%}
        {{ exceptions.raise_compiler_error(
            "apply_privacy_policies: " ~ source_name ~ "." ~ table_name ~ " declares no column " ~ unknown | join(', ')) }}
    {%- endif -%}
    {%- for column_name, column_node in nodes[0].columns.items()
        if (columns is none or column_name in columns) and column_name not in (exclude or []) -%}
        {%- set policy = privacy_policy_of(column_node) -%}
        {%- if policy.treatment is none -%}
            {%- do undeclared.append(source_name ~ '.' ~ table_name ~ '.' ~ column_name) -%}
        {%- else -%}
            {%- set expression = privacy_treatment(
                policy, relation_alias ~ '.`' ~ column_name ~ '`', column_name) -%}
            {%- if expression is not none -%}
                {%- do select_list.append(expression) -%}
            {%- endif -%}
            {%- if policy.treatment == 'pseudonymize' -%}
                {%- do state.update({'pseudonymized': true}) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if undeclared -%}
        {{ exceptions.raise_compiler_error(
            "Source column(s) documented without a privacy treatment: " ~ undeclared | join(', ')
            ~ ". Declare `meta: {pii: ..., treatment: ...}` for each in the source YAML.") }}
    {%- endif -%}
    {%- if state.pseudonymized -%}
        {%- do select_list.append(var('pseudonym_key_version') | int ~ ' as pseudonym_key_version') -%}
    {%- endif -%}
    {{ return(select_list | join(',\n        ')) }}
{% endmacro %}
