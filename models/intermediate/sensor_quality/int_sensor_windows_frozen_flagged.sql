-- Frozen-sensor detection: one row per user and tumbling window. A window is
-- frozen when it holds enough readings and the heart rate never changes in
-- it: a real heart does not beat at exactly the same rate for that long.
{%- if 1440 % (var('frozen_window_minutes') | int) != 0 %}
    {{ exceptions.raise_compiler_error(
        "frozen_window_minutes must divide a day (1440 minutes) so that no window spans two "
        ~ "reading dates, which the incremental models rely on") }}
{%- endif %}
with

readings as (

    select * from {{ ref('int_readings_deduplicated') }}

),

windows as (

    select
        user_pseudonym_id,
        window_start_at,
        reading_date,
        count(*) as n_readings,
        min(heart_rate_bpm) as min_heart_rate_bpm,
        max(heart_rate_bpm) as max_heart_rate_bpm
    from readings
    group by user_pseudonym_id, window_start_at, reading_date

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
