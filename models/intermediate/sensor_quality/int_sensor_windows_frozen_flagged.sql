-- Frozen-sensor detection: one row per user and tumbling window. A window is
-- frozen when it holds enough readings and the heart rate never changes in
-- it: a real heart does not beat at exactly the same rate for that long.
with

readings as (

    select * from {{ ref('int_readings_deduplicated') }}

),

windows as (

    select
        user_pseudonym_id,
        window_start_at,
        count(*) as n_readings,
        min(heart_rate_bpm) as min_heart_rate_bpm,
        max(heart_rate_bpm) as max_heart_rate_bpm
    from readings
    group by user_pseudonym_id, window_start_at

),

final as (

    select
        *,
        (
            n_readings >= {{ var('frozen_min_readings') }}
            and max_heart_rate_bpm = min_heart_rate_bpm
        ) as is_frozen
    from windows

)

select * from final
