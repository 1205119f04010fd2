-- The City Stress Matrix of each tenant: one row per tenant and city, one
-- average-heart-rate column per subscription tier (from the
-- subscription_tiers seed, as fct_city_stress_matrix). Suppression is
-- fct_tenant_city_heart_rate's: a suppressed cell is NULL here.
{%- set tiers = subscription_tiers() %}

with

cells as (

    select * from {{ ref('fct_tenant_city_heart_rate') }}

),

pivot_tiers as (

    -- Jinja-generated columns render with an indent sqlfluff cannot model.
    -- noqa: disable=LT02
    select
        tenant_id,
        city,
        {% for tier in tiers -%}
        max(case when subscription_type = '{{ tier.name }}' then avg_heart_rate end)
            as avg_hr_{{ tier.slug }}{% if not loop.last %},{% endif %}
        {% endfor -%}
    -- noqa: enable=LT02
    from cells
    group by tenant_id, city

)

select * from pivot_tiers
