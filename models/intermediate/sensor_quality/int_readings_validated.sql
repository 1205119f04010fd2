-- Plausible, de-duplicated readings outside frozen windows: every reading of
-- a frozen window is excluded, not just the repeated ones.
-- Materialized incrementally by reading_date: this is where the expensive
-- per-reading work (dedupe, windowing) is kept, so a new day costs one day.
-- It also rebuilds any day whose members differ from staging's (a consent
-- change or an erasure lands no new row).
{%- set dates = reading_dates_to_process(
    ref('stg_wearables__vitals'), 'landed_at',
    also_rebuild=reading_dates_of_changed_members(
        ref('stg_wearables__vitals'), 'user_pseudonym_id', "upstream.quality_flag = 'ok'")) %}

with

readings as (

    select * from {{ ref('int_readings_deduplicated') }}
    {{ reading_date_filter(dates) }}

),

windows as (

    select * from {{ ref('int_sensor_windows_frozen_flagged') }}
    {{ reading_date_filter(dates) }}

),

frozen_windows as (

    select
        user_pseudonym_id,
        window_start_at
    from windows
    where is_frozen

),

remove_frozen as (

    select readings.*
    from readings
    left anti join frozen_windows
        on
            readings.user_pseudonym_id = frozen_windows.user_pseudonym_id
            and readings.window_start_at = frozen_windows.window_start_at

)

select * from remove_frozen
