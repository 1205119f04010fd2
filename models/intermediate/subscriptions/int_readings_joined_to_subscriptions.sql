-- Valid readings with the wearer's current subscription tier. Inner join:
-- readings of users without a subscription do not reach the marts (the
-- data-quality mart counts them).
with

readings as (

    select * from {{ ref('int_readings_validated') }}

),

subscriptions as (

    select * from {{ ref('stg_billing__subscriptions') }}

),

join_tiers as (

    -- One row per user: small enough to ship to every executor, which keeps
    -- the large readings side from being shuffled for the join.
    select /*+ broadcast(subscriptions) */
        readings.user_pseudonym_id,
        readings.city,
        readings.reading_at,
        readings.reading_date,
        readings.heart_rate_bpm,
        subscriptions.subscription_type
    from readings
    inner join subscriptions
        on readings.user_pseudonym_id = subscriptions.user_pseudonym_id

)

select * from join_tiers
