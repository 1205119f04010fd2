-- Valid readings with the wearer's city of the day and current subscription
-- tier. Inner joins: readings of users without a subscription do not reach
-- the marts (the data-quality mart counts them).
-- Ephemeral: stored, it would name each member's city and tier next to
-- their readings; compiled into the marts' own queries instead.
with

readings as (

    select * from {{ ref('int_readings_validated') }}

),

subscriptions as (

    select * from {{ ref('stg_billing__subscriptions') }}

),

wearer_cities as (

    select * from {{ ref('stg_wearables__wearer_cities') }}

),

join_tiers as (

    -- One row per user (and per user and day): small enough to ship to every
    -- executor, which keeps the large readings side from being shuffled.
    select /*+ broadcast(subscriptions, wearer_cities) */
        readings.user_pseudonym_id,
        wearer_cities.city,
        readings.reading_at,
        readings.reading_date,
        readings.heart_rate_bpm,
        subscriptions.subscription_type
    from readings
    inner join subscriptions
        on readings.user_pseudonym_id = subscriptions.user_pseudonym_id
    inner join wearer_cities
        on
            readings.user_pseudonym_id = wearer_cities.user_pseudonym_id
            and readings.reading_date = wearer_cities.reading_date

)

select * from join_tiers
