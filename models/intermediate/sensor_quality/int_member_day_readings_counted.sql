-- The quality rules in one pass, and the grain every vitals mart reads: one
-- row per member, reading date and heart-rate value, counting that value's
-- landed readings by what the rules did with them. Frozen sensors are
-- detected here.
--   1. NULL and out-of-range readings are only counted (quality_flag).
--   2. Exact duplicates (same member, timestamp and value) count once;
--      n_duplicate holds the extra copies.
--   3. A tumbling window is frozen when it holds at least
--      frozen_min_readings de-duplicated plausible readings, all with one
--      value; every reading of it goes to n_frozen, the rest to n_valid.
-- Why this shape: a member-day holds ~1,300 readings but a few dozen
-- distinct values, so the marts scan a table ~20x smaller than the readings,
-- and the readings are written once per build (in staging), not twice.
-- Exact averages and distinct members need only counts; percentiles are
-- exact over (value, count) pairs.
-- One shuffle: every step below groups by keys that include the member and
-- the date, so one `distribute by` serves the dedupe, the window test and
-- the final count (a window never spans two dates).
-- Incremental by reading_date, like staging; a date whose members differ
-- from staging's (a consent change or an erasure lands no new row) is
-- rebuilt too.
{%- if 1440 % (var('frozen_window_minutes') | int) != 0 %}
    {{ exceptions.raise_compiler_error(
        "frozen_window_minutes must divide a day (1440 minutes) so that no window spans two "
        ~ "reading dates, which this model relies on") }}
{%- endif %}
{%- set dates = reading_dates_to_process(
    ref('stg_wearables__vitals'), 'landed_at',
    also_rebuild=reading_dates_of_changed_members(
        ref('stg_wearables__vitals'), 'user_pseudonym_id')) %}

with

vitals as (

    select * from {{ ref('stg_wearables__vitals') }}
    {{ reading_date_filter(dates) }}

),

member_day_partitioned as (

    select
        user_pseudonym_id,
        reading_date,
        {{ tumbling_window_start('reading_at', var('frozen_window_minutes')) }}
            as window_start_at,
        reading_at,
        heart_rate_bpm,
        quality_flag,
        landed_at
    from vitals
    distribute by user_pseudonym_id, reading_date

),

collapse_duplicates as (

    -- One row per distinct reading (a NULL heart rate groups as one value;
    -- only plausible readings are de-duplicated, see count_per_value).
    select
        user_pseudonym_id,
        reading_date,
        window_start_at,
        reading_at,
        heart_rate_bpm,
        quality_flag,
        count(*) as n_copies,
        max(landed_at) as landed_at
    from member_day_partitioned
    group by
        user_pseudonym_id, reading_date, window_start_at, reading_at, heart_rate_bpm, quality_flag

),

count_per_value as (

    select
        user_pseudonym_id,
        reading_date,
        window_start_at,
        heart_rate_bpm,
        quality_flag,
        sum(n_copies) as n_landed,
        count(*) as n_distinct_readings,
        max(landed_at) as landed_at
    from collapse_duplicates
    group by user_pseudonym_id, reading_date, window_start_at, heart_rate_bpm, quality_flag

),

flag_frozen_windows as (

    -- Frozen: enough de-duplicated plausible readings, and one plausible
    -- value (max = min) in the window.
    select
        *,
        coalesce(
            sum(case when quality_flag = 'ok' then n_distinct_readings end)
                over (partition by user_pseudonym_id, reading_date, window_start_at)
            >= {{ var('frozen_min_readings') }}
            and count(case when quality_flag = 'ok' then 1 end)
                over (partition by user_pseudonym_id, reading_date, window_start_at)
            = 1,
            false
        ) as is_frozen_window
    from count_per_value

),

count_per_member_day_value as (

    select
        user_pseudonym_id,
        reading_date,
        heart_rate_bpm,
        quality_flag,
        sum(n_landed) as n_landed,
        sum(case when quality_flag = 'ok' then n_landed - n_distinct_readings else 0 end)
            as n_duplicate,
        sum(case when quality_flag = 'ok' and is_frozen_window then n_distinct_readings else 0 end)
            as n_frozen,
        sum(
            case
                when quality_flag = 'ok' and not is_frozen_window then n_distinct_readings
                else 0
            end
        ) as n_valid,
        max(landed_at) as landed_at
    from flag_frozen_windows
    group by user_pseudonym_id, reading_date, heart_rate_bpm, quality_flag

)

select * from count_per_member_day_value
