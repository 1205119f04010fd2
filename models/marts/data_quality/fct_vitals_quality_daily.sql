-- Where every reading went, per reading date: readings in = the sum of the
-- drop reasons + readings out. A quality regression shows up here first.
with

quality_counts as (

    select * from {{ ref('int_vitals_quality_counted') }}

),

subscribed as (

    select * from {{ ref('int_readings_joined_to_subscriptions') }}

),

subscribed_counts as (

    -- Recomputed in full on every build: who has a subscription can change
    -- for any past date.
    select
        reading_date,
        count(*) as readings_out
    from subscribed
    group by reading_date

),

final as (

    select
        quality_counts.reading_date,
        quality_counts.readings_in,
        quality_counts.dropped_null_heart_rate,
        quality_counts.dropped_out_of_range,
        quality_counts.dropped_duplicate,
        quality_counts.dropped_frozen,
        quality_counts.readings_validated
        - coalesce(subscribed_counts.readings_out, 0) as dropped_no_subscription,
        coalesce(subscribed_counts.readings_out, 0) as readings_out
    from quality_counts
    left join subscribed_counts
        on quality_counts.reading_date = subscribed_counts.reading_date

)

select * from final
