-- Members per signup cohort month, region, age band, gender and tier, with
-- their average lifetime value. A cell with fewer than min_cell_users members
-- keeps its row but no measures. No revenue from app events: summed over
-- cohorts it would give the purchase revenue of the DP release exactly, and
-- subtracting it would reveal the noise (docs/privacy.md).
with

users as (

    select * from {{ ref('stg_app__users') }}

),

users_in_cohorts as (

    select
        user_pseudonym_id,
        created_month as cohort_month,
        region,
        age_band,
        gender,
        lifetime_value_eur,
        coalesce(subscription_tier, 'none') as subscription_tier
    from users

),

aggregate_cells as (

    select
        cohort_month,
        region,
        age_band,
        gender,
        subscription_tier,
        count(*) as n_users,
        avg(cast(lifetime_value_eur as double)) as avg_lifetime_value_eur
    from users_in_cohorts
    group by cohort_month, region, age_band, gender, subscription_tier

),

final as (

    select
        cohort_month,
        region,
        age_band,
        gender,
        subscription_tier,
        n_users < {{ var('min_cell_users') }} as is_suppressed,
        {{ suppress_small_cell('n_users', 'n_users') }} as n_users,
        {{ suppress_small_cell('avg_lifetime_value_eur', 'n_users') }} as avg_lifetime_value_eur
    from aggregate_cells

)

select * from final
