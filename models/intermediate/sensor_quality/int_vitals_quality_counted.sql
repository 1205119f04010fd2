-- Per reading date, how many readings each quality rule removed. Kept
-- incrementally next to int_readings_validated so that the data-quality mart
-- never rescans old days; the subscription-dependent count is added in the mart.
-- A day whose staging count changed without new landings (a consent
-- withdrawal or an erasure) is recounted too.
{%- set dates = reading_dates_to_process(
    ref('stg_wearables__vitals'), 'landed_at',
    also_rebuild=reading_dates_of_changed_counts(ref('stg_wearables__vitals'), 'readings_in')) %}

with

vitals as (

    select * from {{ ref('stg_wearables__vitals') }}
    {{ reading_date_filter(dates) }}

),

deduplicated as (

    select * from {{ ref('int_readings_deduplicated') }}
    {{ reading_date_filter(dates) }}

),

windows as (

    select * from {{ ref('int_sensor_windows_frozen_flagged') }}
    {{ reading_date_filter(dates) }}

),

landed_counts as (

    select
        reading_date,
        count(*) as readings_in,
        count_if(quality_flag = 'null_heart_rate') as dropped_null_heart_rate,
        count_if(quality_flag = 'out_of_range') as dropped_out_of_range,
        max(landed_at) as landed_at
    from vitals
    group by reading_date

),

deduplicated_counts as (

    select
        reading_date,
        sum(n_copies - 1) as dropped_duplicate
    from deduplicated
    group by reading_date

),

window_counts as (

    -- Windows hold de-duplicated readings, so their sizes add up per date.
    select
        reading_date,
        sum(case when is_frozen then n_readings else 0 end) as dropped_frozen,
        sum(case when not is_frozen then n_readings else 0 end) as readings_validated
    from windows
    group by reading_date

),

final as (

    select
        landed_counts.reading_date,
        landed_counts.readings_in,
        landed_counts.dropped_null_heart_rate,
        landed_counts.dropped_out_of_range,
        landed_counts.landed_at,
        coalesce(deduplicated_counts.dropped_duplicate, 0) as dropped_duplicate,
        coalesce(window_counts.dropped_frozen, 0) as dropped_frozen,
        coalesce(window_counts.readings_validated, 0) as readings_validated
    from landed_counts
    left join deduplicated_counts
        on landed_counts.reading_date = deduplicated_counts.reading_date
    left join window_counts
        on landed_counts.reading_date = window_counts.reading_date

)

select * from final
