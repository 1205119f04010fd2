-- Daily heart-rate trend per city and subscription tier, for leadership
-- dashboards and the city explorer. A day is a smaller cell than the
-- matrix's, so the same small-cell rule applies per day: a cell with fewer
-- than min_cell_users distinct users keeps its row (is_suppressed = true)
-- but exposes no measure, so "suppressed" and "no data" stay distinguishable.
--
-- Complementary suppression (docs/privacy.md, differencing). A day's cells
-- add up to published totals: over dates to the all-dates cell of
-- fct_city_heart_rate (readings and heart-rate sum), over cities and tiers
-- to readings_out of fct_vitals_quality_daily. So each small cell is
-- suppressed together with a 2 x 2 rectangle: another day of its series,
-- and the same two days of another series, chosen to hide as few users as
-- possible. Moving a value around such a rectangle changes no published
-- total, so no suppressed cell can be solved from them. A cell whose series
-- or date is suppressed at the coarser grain is suppressed too; a small
-- cell with no rectangle suppresses its whole date (macro
-- complementary_rectangles, shared with fct_tenant_city_daily_heart_rate).
{%- set k = var('min_cell_users') %}

with

readings as (

    select * from {{ ref('int_readings_joined_to_subscriptions') }}

),

series as (

    select * from {{ ref('fct_city_heart_rate') }}

),

quality_dates as (

    select * from {{ ref('fct_vitals_quality_daily') }}

),

{{ nearest_rank_percentiles(
    'readings', ['city', 'reading_date', 'subscription_type'], 'heart_rate_bpm', 'n_readings',
    {'p50_heart_rate': 0.5, 'p90_heart_rate': 0.9}) }},

aggregate_daily_cells as (

    -- Percentiles are exact nearest-rank ones (macro
    -- nearest_rank_percentiles): always a value that occurs in the cell.
    select
        readings.city,
        readings.reading_date,
        readings.subscription_type,
        count(distinct readings.user_pseudonym_id) as n_users,
        sum(readings.n_readings) as n_readings,
        sum(readings.heart_rate_bpm * readings.n_readings) / sum(readings.n_readings)
            as avg_heart_rate,
        min(cell_percentiles.p50_heart_rate) as p50_heart_rate,
        min(cell_percentiles.p90_heart_rate) as p90_heart_rate
    from readings
    inner join cell_percentiles
        on
            readings.city = cell_percentiles.city
            and readings.reading_date = cell_percentiles.reading_date
            and readings.subscription_type = cell_percentiles.subscription_type
    group by readings.city, readings.reading_date, readings.subscription_type

),

flag_primary as (

    select
        daily_cells.*,
        (
            daily_cells.n_users < {{ k }}
            or coalesce(series.is_suppressed, true)
            or coalesce(quality_dates.is_suppressed, true)
        ) as is_primary
    from aggregate_daily_cells as daily_cells
    left join series
        on
            daily_cells.city = series.city
            and daily_cells.subscription_type = series.subscription_type
    left join quality_dates
        on daily_cells.reading_date = quality_dates.reading_date

),

{{ complementary_rectangles(
    'flag_primary', ['city', 'subscription_type'], 'reading_date',
    hidden='is_primary', needs='is_primary') }},

suppress_cells as (

    select
        flag_primary.city,
        flag_primary.reading_date,
        flag_primary.subscription_type,
        flag_primary.n_users,
        flag_primary.n_readings,
        flag_primary.avg_heart_rate,
        flag_primary.p50_heart_rate,
        flag_primary.p90_heart_rate,
        flag_primary.is_primary or complement_cells.city is not null as is_suppressed
    from flag_primary
    left join complement_cells
        on
            flag_primary.city = complement_cells.city
            and flag_primary.subscription_type = complement_cells.subscription_type
            and flag_primary.reading_date = complement_cells.reading_date

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
    from suppress_cells

)

select * from final
