-- Where every reading went, per reading date: readings in = the sum of the
-- drop reasons + readings out. A quality regression shows up here first.
with

vitals as (

    select * from {{ ref('stg_wearables__vitals') }}

),

deduplicated as (

    select * from {{ ref('int_readings_deduplicated') }}

),

frozen_windows as (

    select * from {{ ref('int_sensor_windows_frozen_flagged') }}
    where is_frozen

),

validated as (

    select * from {{ ref('int_readings_validated') }}

),

subscribed as (

    select * from {{ ref('int_readings_joined_to_subscriptions') }}

),

landed_counts as (

    select
        reading_date,
        count(*) as readings_in,
        count_if(quality_flag = 'null_heart_rate') as dropped_null_heart_rate,
        count_if(quality_flag = 'out_of_range') as dropped_out_of_range
    from vitals
    group by reading_date

),

duplicate_counts as (

    select
        reading_date,
        sum(n_copies - 1) as dropped_duplicate
    from deduplicated
    group by reading_date

),

frozen_counts as (

    select
        deduplicated.reading_date,
        count(*) as dropped_frozen
    from deduplicated
    inner join frozen_windows
        on
            deduplicated.user_pseudonym_id = frozen_windows.user_pseudonym_id
            and deduplicated.window_start_at = frozen_windows.window_start_at
    group by deduplicated.reading_date

),

validated_counts as (

    select
        reading_date,
        count(*) as readings_validated
    from validated
    group by reading_date

),

subscribed_counts as (

    select
        reading_date,
        count(*) as readings_out
    from subscribed
    group by reading_date

),

final as (

    select
        landed_counts.reading_date,
        landed_counts.readings_in,
        landed_counts.dropped_null_heart_rate,
        landed_counts.dropped_out_of_range,
        coalesce(duplicate_counts.dropped_duplicate, 0) as dropped_duplicate,
        coalesce(frozen_counts.dropped_frozen, 0) as dropped_frozen,
        coalesce(validated_counts.readings_validated, 0)
        - coalesce(subscribed_counts.readings_out, 0) as dropped_no_subscription,
        coalesce(subscribed_counts.readings_out, 0) as readings_out
    from landed_counts
    left join duplicate_counts
        on landed_counts.reading_date = duplicate_counts.reading_date
    left join frozen_counts
        on landed_counts.reading_date = frozen_counts.reading_date
    left join validated_counts
        on landed_counts.reading_date = validated_counts.reading_date
    left join subscribed_counts
        on landed_counts.reading_date = subscribed_counts.reading_date

)

select * from final
