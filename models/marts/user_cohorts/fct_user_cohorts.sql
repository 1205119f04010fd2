-- Members per signup cohort month, region, age band, gender and tier, with
-- their average lifetime value. A cell with fewer than min_cell_users members
-- keeps its row but no measures. The cells of one tier and region add up to
-- that tier and region's total, which fct_subscription_metrics publishes, so
-- a lone small cell there would be the total minus the others: with exactly
-- one small cell in a tier and region, the smallest other cell of the group
-- is suppressed with it. No revenue from app events: summed over
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

count_small as (

    select
        *,
        n_users < {{ var('min_cell_users') }} as is_small,
        count_if(n_users < {{ var('min_cell_users') }}) over (
            partition by subscription_tier, region
        ) as n_small_in_group,
        row_number() over (
            partition by subscription_tier, region
            order by
                n_users < {{ var('min_cell_users') }} desc, n_users asc,
                cohort_month asc, age_band asc, gender asc
        ) as users_rank
    from aggregate_cells

),

flag_suppressed as (

    -- With one small cell in the group, users_rank 1 is that cell and 2 its
    -- complement.
    select
        *,
        is_small or (n_small_in_group = 1 and users_rank = 2) as is_suppressed
    from count_small

),

final as (

    select
        cohort_month,
        region,
        age_band,
        gender,
        subscription_tier,
        is_suppressed,
        case when not is_suppressed then n_users end as n_users,
        case when not is_suppressed then avg_lifetime_value_eur end as avg_lifetime_value_eur
    from flag_suppressed

)

select * from final
