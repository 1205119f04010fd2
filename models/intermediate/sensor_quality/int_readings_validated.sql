-- Plausible, de-duplicated readings outside frozen windows: every reading of
-- a frozen window is excluded, not just the repeated ones.
with

readings as (

    select * from {{ ref('int_readings_deduplicated') }}

),

frozen_windows as (

    select
        user_pseudonym_id,
        window_start_at
    from {{ ref('int_sensor_windows_frozen_flagged') }}
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
