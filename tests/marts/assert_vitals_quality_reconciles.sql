-- Asserts that, for every reading date, readings in = the readings dropped for
-- each reason + readings out: the quality rules lose nothing silently.
select *
from {{ ref('fct_vitals_quality_daily') }}
where
    readings_in != dropped_null_heart_rate + dropped_out_of_range
    + dropped_duplicate + dropped_frozen + dropped_no_subscription + readings_out
    or least(
        dropped_null_heart_rate, dropped_out_of_range, dropped_duplicate,
        dropped_frozen, dropped_no_subscription, readings_out
    ) < 0
