{#-
    Override of dbt-spark's seed loader. dbt-spark 1.11 pastes each value
    into the INSERT between single quotes without escaping them, so a seed
    value with an apostrophe ("L'Aquila", "'s-Hertogenbosch") is a syntax
    error, and an empty cell becomes the string 'None'. Here every value is
    rendered by sql_string_literal (escaped, or NULL) and cast to the column
    type, with no bindings, which behaves the same in session and Thrift mode.

    Arguments: model, agate_table (supplied by dbt's seed materialization).
-#}
{% macro spark__load_csv_rows(model, agate_table) %}
    {%- set batch_size = get_batch_size() -%}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set statements = [] -%}
    {%- for chunk in agate_table.rows | batch(batch_size) -%}
        {%- set sql -%}
            insert into {{ this.render() }} values
            {% for row in chunk -%}
                ({%- for col_name in agate_table.column_names -%}
                    {%- set type = column_override.get(col_name, adapter.convert_type(agate_table, loop.index0)) -%}
                    {%- set value = row[loop.index0] -%}
                    cast({{ sql_string_literal(value) }} as {{ type }})
                    {{- ", " if not loop.last -}}
                {%- endfor -%}){{ "," if not loop.last }}
            {% endfor -%}
        {%- endset -%}
        {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
        {%- if loop.index0 == 0 -%}
            {%- do statements.append(sql) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(statements[0]) }}
{% endmacro %}
