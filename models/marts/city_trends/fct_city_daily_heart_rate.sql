-- Daily heart-rate trend per city and subscription tier, for leadership
-- dashboards and the city explorer. A day is a smaller cell than the
-- matrix's, so the same small-cell rule applies per day: a cell with fewer
-- than min_cell_users distinct users keeps its row (is_suppressed = true)
-- but exposes no measure, so "suppressed" and "no data" stay distinguishable.
with

readings as (

    select * from {{ ref('int_readings_joined_to_subscriptions') }}

),

aggregate_daily_cells as (

    -- Percentiles are approximate (percentile_approx, default accuracy):
    -- an exact median needs a full sort per cell, and a trend needs no
    -- better than a tenth of a percent of rank error.
    select
        city,
        reading_date,
        subscription_type,
        count(distinct user_pseudonym_id) as n_users,
        count(*) as n_readings,
        avg(cast(heart_rate_bpm as double)) as avg_heart_rate,
        percentile_approx(cast(heart_rate_bpm as double), 0.5) as p50_heart_rate,
        percentile_approx(cast(heart_rate_bpm as double), 0.9) as p90_heart_rate
    from readings
    group by city, reading_date, subscription_type

),

suppress_small_cells as (

    select
        city,
        reading_date,
        subscription_type,
        n_users < {{ var('min_cell_users') }} as is_suppressed,
        n_users,
        n_readings,
        avg_heart_rate,
        p50_heart_rate,
        p90_heart_rate
    from aggregate_daily_cells

),

final as (

    select
        city,
        reading_date,
        subscription_type,
        is_suppressed,
        case when not is_suppressed then n_users end as n_users,
        case when not is_suppressed then n_readings end as n_readings,
        case when not is_suppressed then avg_heart_rate end as avg_heart_rate,
        case when not is_suppressed then p50_heart_rate end as p50_heart_rate,
        case when not is_suppressed then p90_heart_rate end as p90_heart_rate
    from suppress_small_cells

)

select * from final
