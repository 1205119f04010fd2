-- Steps 1 and 2 of the quality rules: keep plausible readings only, then
-- count each exact duplicate (same user, timestamp and value) once.
with

vitals as (

    select * from {{ ref('stg_wearables__vitals') }}

),

plausible as (

    select * from vitals
    where quality_flag = 'ok'

),

collapse_duplicates as (

    -- Duplicates are identical readings delivered twice; min() only makes the
    -- choice of descriptive columns deterministic should they ever differ.
    select
        user_pseudonym_id,
        reading_at,
        heart_rate_bpm,
        min(device_pseudonym_id) as device_pseudonym_id,
        min(city) as city,
        min(reading_date) as reading_date,
        count(*) as n_copies
    from plausible
    group by user_pseudonym_id, reading_at, heart_rate_bpm

),

final as (

    select
        user_pseudonym_id,
        device_pseudonym_id,
        city,
        reading_at,
        reading_date,
        {{ tumbling_window_start('reading_at', var('frozen_window_minutes')) }}
            as window_start_at,
        heart_rate_bpm,
        n_copies
    from collapse_duplicates

)

select * from final
