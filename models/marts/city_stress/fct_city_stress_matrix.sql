-- The City Stress Matrix: one row per city, one average-heart-rate column per
-- subscription tier. The columns are generated from the subscription_tiers
-- seed (avg_hr_<tier>), so a new tier is a seed change, not a SQL edit.
{%- set tiers = subscription_tiers() %}

with

cells as (

    select * from {{ ref('fct_city_heart_rate') }}

),

pivot_tiers as (

    -- Suppressed cells already carry a NULL average, so they stay NULL here,
    -- exactly like cells without data.
    -- Jinja-generated columns render with an indent sqlfluff cannot model.
    -- noqa: disable=LT02
    select
        city,
        {% for tier in tiers -%}
        max(case when subscription_type = '{{ tier.name }}' then avg_heart_rate end)
            as avg_hr_{{ tier.slug }}{% if not loop.last %},{% endif %}
        {% endfor -%}
    -- noqa: enable=LT02
    from cells
    group by city

)

select * from pivot_tiers
