-- The leak guard. Asserts that no string value in any relation outside the
-- restricted `raw` zone (every table and view in the schemas this project
-- builds, including ones dbt did not create) equals a raw PII value, or is
-- shaped like a raw identifier: email, raw user or device id, full IPv4 or
-- IPv6 address, IBAN, phone or national id number.
-- Raw PII values are every value of every source column whose declared `pii`
-- type is an identifier (all but ignored_types below), so a newly declared
-- PII column is guarded without editing this test.
-- Set-based: all scanned values are unpivoted into one stream and joined
-- once to the raw values, so it stays one shuffle join at any size.
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
    {%- for schema in schemas | sort -%}
        {%- set tables = run_query('show tables in `' ~ schema ~ '`') -%}
        {%- for table_row in tables.rows if not table_row[2] -%}
            {%- set relation = api.Relation.create(
                schema=schema, identifier=table_row[1], type='table') -%}
            {%- for column in adapter.get_columns_in_relation(relation)
                if column.dtype | lower == 'string' -%}
                {%- do scanned.append({'relation': relation, 'column': column.name}) -%}
            {%- endfor -%}
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

    {%- for item in scanned %}
        select
            '{{ item.relation }}' as relation_name,
            '{{ item.column }}' as column_name,  -- noqa: RF04
            cast(`{{ item.column }}` as string) as scanned_value
        from {{ item.relation }}
        where `{{ item.column }}` is not null
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
        count(*) as n_offending_values
    from scanned_values
    inner join raw_pii_values
        on scanned_values.scanned_value = raw_pii_values.pii_value
    group by
        scanned_values.relation_name,
        scanned_values.column_name,
        raw_pii_values.pii_kind

),

classify_patterns as (

    select
        relation_name,
        column_name,
        case
            when scanned_value rlike '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}'
                then 'email pattern'
            when scanned_value rlike 'user_[0-9]{6,}' then 'raw user id pattern'
            when scanned_value rlike 'dev-[0-9a-f]{8}' then 'raw device id pattern'
            when scanned_value rlike '^([0-9]{1,3}\\.){3}[0-9]{1,3}$' then 'full IPv4 address'
            when scanned_value rlike '^[0-9A-Fa-f]{0,4}(:[0-9A-Fa-f]{0,4}){2,7}$'
                then 'full IPv6 address'
            when scanned_value rlike '^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$' then 'IBAN pattern'
            when scanned_value rlike '^\\+?[0-9][0-9 ().-]{7,}[0-9]$'
                then 'phone or national id pattern'
        end as offence
    from scanned_values

),

pattern_matches as (

    select
        relation_name,
        column_name,
        offence,
        count(*) as n_offending_values
    from classify_patterns
    where offence is not null
    group by relation_name, column_name, offence

),

offences as (

    select * from equal_to_raw_values
    union all
    select * from pattern_matches

)

select * from offences
