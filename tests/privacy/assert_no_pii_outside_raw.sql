-- The leak guard. Asserts that no string value in any relation outside the
-- restricted `raw` zone (every table and view in the schemas this project
-- builds, including ones dbt did not create) equals a raw PII value, or is
-- shaped like a raw identifier: email, raw user or device id, full IPv4 or
-- IPv6 address, IBAN, phone or national id number.
-- Raw PII values are every value of every source column whose declared `pii`
-- type is an identifier (all but ignored_types below), so a newly declared
-- PII column is guarded without editing this test.
-- Set-based: the distinct values of each scanned column are unpivoted into
-- one stream and joined once to the raw values, so it stays one shuffle join
-- at any size, and its cost follows distinct values rather than rows.
-- One row per offending relation, column and offence.
{{ config(tags=['privacy']) }}

{#- Types whose values are not a data subject's identifiers: pseudonyms are
    meant to be outside raw, and an operator's login is audit metadata. -#}
{%- set ignored_types = [
    'none', 'quasi_identifier', 'health_data', 'consent', 'mixed', 'date_of_birth',
    'pseudonym', 'employee_login',
] -%}
{%- set raw_columns = [] -%}
{%- set scanned = [] -%}
{%- if execute -%}
    {%- for node in graph.sources.values() if node.package_name == project_name -%}
        {%- for column_name, column in node.columns.items() -%}
            {%- set policy = privacy_policy_of(column) -%}
            {%- if policy.pii is not none and policy.pii not in ignored_types -%}
                {%- do raw_columns.append({
                    'relation': source(node.source_name, node.name),
                    'column': column_name,
                    'kind': policy.pii,
                }) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- set schemas = [] -%}
    {%- for node in graph.nodes.values()
        if node.resource_type in ('model', 'seed') and node.package_name == project_name
        and node.schema != 'raw' and node.schema not in schemas -%}
        {%- do schemas.append(node.schema) -%}
    {%- endfor -%}
    {#- Offline compilation (linting) reads no catalog: one placeholder
        relation stands in, so the scan's SQL is still rendered. -#}
    {%- if var('offline_compile', false) -%}
        {%- do scanned.append({
            'relation': api.Relation.create(schema='analytics', identifier='offline_placeholder'),
            'columns': ['first_string_column', 'second_string_column'],
        }) -%}
        {%- do schemas.clear() -%}
    {%- endif -%}
    {%- for schema in schemas | sort -%}
        {%- set tables = run_query('show tables in `' ~ schema ~ '`') -%}
        {%- for table_row in tables.rows if not table_row[2] -%}
            {%- set relation = api.Relation.create(
                schema=schema, identifier=table_row[1], type='table') -%}
            {%- set string_columns = [] -%}
            {%- for column in adapter.get_columns_in_relation(relation)
                if column.dtype | lower == 'string' -%}
                {%- do string_columns.append(column.name) -%}
            {%- endfor -%}
            {%- if string_columns -%}
                {%- do scanned.append({'relation': relation, 'columns': string_columns}) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
{%- endif %}

with

raw_pii_values as (

    {%- for item in raw_columns %}
        select distinct
            cast(`{{ item.column }}` as string) as pii_value,
            '{{ item.kind }}' as pii_kind
        from {{ item.relation }}
        where length(cast(`{{ item.column }}` as string)) >= 4
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
    {%- if raw_columns | length == 0 %}
        select
            cast(null as string) as pii_value,
            cast(null as string) as pii_kind
    {%- endif %}

),

scanned_values as (

    {#- One pass per relation (a view is computed once, not once per column):
        its string columns are unpivoted with stack(), then made distinct, so
        the regexes and the join below see each relation's distinct values
        (pseudonyms, cities, flags: thousands) instead of every row. #}
    {%- for item in scanned %}
        select distinct
            '{{ item.relation }}' as relation_name,
            unpivoted.column_name,
            unpivoted.scanned_value
        from (
            select
                stack(
                    {{ item.columns | length }},
                    {%- for column in item.columns %}
                        '{{ column }}', `{{ column }}`{{ "," if not loop.last }}
                    {%- endfor %}
                ) as (column_name, scanned_value)
            from {{ item.relation }}
        ) as unpivoted
        where unpivoted.scanned_value is not null
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
    {%- if scanned | length == 0 %}
        select
            cast(null as string) as relation_name,
            cast(null as string) as column_name,
            cast(null as string) as scanned_value
    {%- endif %}

),

equal_to_raw_values as (

    select
        scanned_values.relation_name,
        scanned_values.column_name,
        concat('equals a raw ', raw_pii_values.pii_kind) as offence,
        count(distinct scanned_values.scanned_value) as n_offending_values
    from scanned_values
    inner join raw_pii_values
        on scanned_values.scanned_value = raw_pii_values.pii_value
    group by
        scanned_values.relation_name,
        scanned_values.column_name,
        raw_pii_values.pii_kind

),

count_patterns as (

    {#- Counts, not a CASE plus a filter: Spark pushes a filter on a value
        column below the distinct, down to every row of every relation (the
        regexes then ran on millions of rows instead of thousands of distinct
        values). A filter on an aggregate cannot be pushed down. #}
    select
        relation_name,
        column_name,
        count_if(scanned_value rlike '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}')
            as n_email_pattern,
        count_if(scanned_value rlike 'user_[0-9]{6,}') as n_raw_user_id_pattern,
        count_if(scanned_value rlike 'dev-[0-9a-f]{8}') as n_raw_device_id_pattern,
        count_if(scanned_value rlike '^([0-9]{1,3}\\.){3}[0-9]{1,3}$') as n_full_ipv4_address,
        count_if(scanned_value rlike '^[0-9A-Fa-f]{0,4}(:[0-9A-Fa-f]{0,4}){2,7}$')
            as n_full_ipv6_address,
        count_if(scanned_value rlike '^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$') as n_iban_pattern,
        count_if(scanned_value rlike '^\\+?[0-9][0-9 ().-]{7,}[0-9]$')
            as n_phone_or_national_id_pattern
    from scanned_values
    group by relation_name, column_name

),

unpivot_patterns as (

    select
        count_patterns.relation_name,
        count_patterns.column_name,
        pattern_counts.offence,
        pattern_counts.n_offending_values
    from count_patterns
        lateral view stack(
            7,
            'email pattern', count_patterns.n_email_pattern,
            'raw user id pattern', count_patterns.n_raw_user_id_pattern,
            'raw device id pattern', count_patterns.n_raw_device_id_pattern,
            'full IPv4 address', count_patterns.n_full_ipv4_address,
            'full IPv6 address', count_patterns.n_full_ipv6_address,
            'IBAN pattern', count_patterns.n_iban_pattern,
            'phone or national id pattern', count_patterns.n_phone_or_national_id_pattern
        ) pattern_counts as offence, n_offending_values

),

pattern_matches as (

    select * from unpivot_patterns
    where n_offending_values > 0

),

offences as (

    select * from equal_to_raw_values
    union all
    select * from pattern_matches

)

select * from offences
