-- Asserts that no raw user id, device id or full name, in any string column
-- of any relation this project builds outside the `raw` zone, equals a value
-- from the raw zone, and that no value even contains something shaped like a
-- raw user id. One row per offending column; set-based, so it scales.
{{ config(tags=['privacy']) }}

{%- set raw_identifiers -%}
    select distinct user_id as identifier_value, 'user_id' as identifier_kind
    from {{ source('wearables', 'vitals') }}
    union
    select distinct device_id, 'device_id'
    from {{ source('wearables', 'vitals') }}
    union
    select distinct full_name, 'full_name'
    from {{ source('wearables', 'vitals') }}
    union
    select distinct user_id, 'user_id'
    from {{ source('billing', 'subscriptions') }}
{%- endset -%}

{%- set checks = [] -%}
{%- if execute -%}
    {%- for node in graph.nodes.values()
        if node.resource_type in ('model', 'seed')
        and node.config.materialized != 'ephemeral'
        and node.package_name == project_name -%}
        {%- set relation = adapter.get_relation(
            database=node.database, schema=node.schema, identifier=node.alias) -%}
        {%- if relation is not none and relation.schema != 'raw' -%}
            {%- for column in adapter.get_columns_in_relation(relation)
                if column.dtype | lower == 'string' -%}
                {%- do checks.append({'relation': relation, 'column': column.name}) -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endfor -%}
{%- endif %}

with

raw_identifiers as (

    {{ raw_identifiers }}

),

offences as (

    {%- for check in checks %}
        select
            '{{ check.relation }}' as offending_relation,
            '{{ check.column }}' as offending_column,
            count(*) as n_offending_values
        from {{ check.relation }} as scanned
        where
            exists (
                select 1 from raw_identifiers
                where raw_identifiers.identifier_value = scanned.`{{ check.column }}`
            )
            or scanned.`{{ check.column }}` rlike 'user_[0-9]{6,}'
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
    {%- if checks | length == 0 %}
    select
        cast(null as string) as offending_relation,
        cast(null as string) as offending_column,
        cast(0 as bigint) as n_offending_values
    {%- endif %}

)

select * from offences
where n_offending_values > 0
