-- Asserts that, for every published reading date, readings in = the readings
-- dropped for each reason + readings out: the quality rules lose nothing
-- silently. A suppressed date must expose no count.
select *
from {{ ref('fct_vitals_quality_daily') }}
where
    (
        is_suppressed and coalesce(
            readings_in, dropped_null_heart_rate, dropped_out_of_range, dropped_duplicate,
            dropped_frozen, dropped_no_subscription, readings_out
        ) is not null
    )
    or readings_in != dropped_null_heart_rate + dropped_out_of_range
    + dropped_duplicate + dropped_frozen + dropped_no_subscription + readings_out
    or least(
        dropped_null_heart_rate, dropped_out_of_range, dropped_duplicate,
        dropped_frozen, dropped_no_subscription, readings_out
    ) < 0
