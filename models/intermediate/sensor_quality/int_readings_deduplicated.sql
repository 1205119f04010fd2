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

    -- Duplicates are identical readings delivered twice.
    -- reading_date is a function of reading_at; grouping by it lets a date
    -- filter from an incremental model reach the partitioned table below.
    select
        user_pseudonym_id,
        reading_at,
        heart_rate_bpm,
        reading_date,
        max(landed_at) as landed_at,
        count(*) as n_copies
    from plausible
    group by user_pseudonym_id, reading_at, heart_rate_bpm, reading_date

),

final as (

    select
        user_pseudonym_id,
        reading_at,
        reading_date,
        {{ tumbling_window_start('reading_at', var('frozen_window_minutes')) }}
            as window_start_at,
        heart_rate_bpm,
        n_copies,
        landed_at
    from collapse_duplicates

)

select * from final
