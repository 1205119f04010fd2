-- Members per signup cohort month, region, age band, gender and tier, with
-- their average lifetime value and the purchase revenue of their events. A
-- cell with fewer than min_cell_users members keeps its row but no measures.
with

users as (

    select * from {{ ref('stg_app__users') }}

),

events as (

    select * from {{ ref('stg_app__events') }}

),

revenue_per_user as (

    select
        user_pseudonym_id,
        sum(amount_eur) as revenue_eur
    from events
    where event_type = 'purchase'
    group by user_pseudonym_id

),

users_with_revenue as (

    select
        users.user_pseudonym_id,
        users.created_month as cohort_month,
        users.region,
        users.age_band,
        users.gender,
        users.lifetime_value_eur,
        coalesce(users.subscription_tier, 'none') as subscription_tier,
        coalesce(revenue_per_user.revenue_eur, 0) as revenue_eur
    from users
    left join revenue_per_user
        on users.user_pseudonym_id = revenue_per_user.user_pseudonym_id

),

aggregate_cells as (

    select
        cohort_month,
        region,
        age_band,
        gender,
        subscription_tier,
        count(*) as n_users,
        avg(cast(lifetime_value_eur as double)) as avg_lifetime_value_eur,
        sum(revenue_eur) as revenue_eur
    from users_with_revenue
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
        {{ suppress_small_cell('avg_lifetime_value_eur', 'n_users') }} as avg_lifetime_value_eur,
        {{ suppress_small_cell('revenue_eur', 'n_users') }} as revenue_eur
    from aggregate_cells

)

select * from final
