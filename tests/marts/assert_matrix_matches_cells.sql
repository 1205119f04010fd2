-- Asserts that every value of the City Stress Matrix equals its unsuppressed
-- cell in fct_city_heart_rate, that suppressed or absent cells are NULL, and
-- that every city of the cells has exactly one matrix row.
{%- set tiers = subscription_tiers() %}

with

cells as (

    select * from {{ ref('fct_city_heart_rate') }}

),

matrix as (

    select * from {{ ref('fct_city_stress_matrix') }}

),

matrix_long as (

    {%- for tier in tiers %}
        select
            city,
            '{{ tier.name }}' as subscription_type,
            avg_hr_{{ tier.slug }} as avg_heart_rate
        from matrix
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}

),

value_mismatches as (

    select
        matrix_long.city,
        matrix_long.subscription_type
    from matrix_long
    left join cells
        on
            matrix_long.city = cells.city
            and matrix_long.subscription_type = cells.subscription_type
    where not (matrix_long.avg_heart_rate <=> cells.avg_heart_rate)

),

matrix_rows_per_city as (

    select
        city,
        count(*) as n_rows
    from matrix
    group by city

),

cell_cities as (

    select distinct city from cells

),

row_count_mismatches as (

    select
        cell_cities.city,
        cast(null as string) as subscription_type
    from cell_cities
    left join matrix_rows_per_city
        on cell_cities.city = matrix_rows_per_city.city
    where coalesce(matrix_rows_per_city.n_rows, 0) != 1

)

select * from value_mismatches
union all
select * from row_count_mismatches
