-- Average heart rate per city and subscription tier. A cell with fewer than
-- min_cell_users distinct users keeps its row (is_suppressed = true) but
-- exposes no measure: small cells single out individuals.
with

readings as (

    select * from {{ ref('int_readings_joined_to_subscriptions') }}

),

aggregate_cells as (

    select
        city,
        subscription_type,
        count(distinct user_pseudonym_id) as n_users,
        count(*) as n_readings,
        avg(cast(heart_rate_bpm as double)) as avg_heart_rate
    from readings
    group by city, subscription_type

),

suppress_small_cells as (

    select
        city,
        subscription_type,
        n_users < {{ var('min_cell_users') }} as is_suppressed,
        n_users,
        n_readings,
        avg_heart_rate
    from aggregate_cells

),

final as (

    select
        city,
        subscription_type,
        is_suppressed,
        case when not is_suppressed then n_users end as n_users,
        case when not is_suppressed then n_readings end as n_readings,
        case when not is_suppressed then avg_heart_rate end as avg_heart_rate
    from suppress_small_cells

)

select * from final
