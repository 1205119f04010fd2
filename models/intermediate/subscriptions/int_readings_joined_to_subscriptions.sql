-- Valid readings, counted per member, date and heart-rate value, with the
-- wearer's city of the day and current subscription tier. Inner joins:
-- readings of users without a subscription do not reach the marts (the
-- data-quality mart counts them).
-- Ephemeral: stored, it would name each member's city and tier next to
-- their readings; compiled into the marts' own queries instead.
with

member_day_values as (

    select * from {{ ref('int_member_day_readings_counted') }}
    where n_valid > 0

),

subscriptions as (

    select * from {{ ref('stg_billing__subscriptions') }}

),

wearer_cities as (

    select * from {{ ref('stg_wearables__wearer_cities') }}

),

join_tiers as (

    -- One row per user (and per user and day): small enough to ship to every
    -- executor, which keeps the larger side from being shuffled.
    select /*+ broadcast(subscriptions, wearer_cities) */
        member_day_values.user_pseudonym_id,
        wearer_cities.city,
        member_day_values.reading_date,
        member_day_values.heart_rate_bpm,
        member_day_values.n_valid as n_readings,
        subscriptions.subscription_type
    from member_day_values
    inner join subscriptions
        on member_day_values.user_pseudonym_id = subscriptions.user_pseudonym_id
    inner join wearer_cities
        on
            member_day_values.user_pseudonym_id = wearer_cities.user_pseudonym_id
            and member_day_values.reading_date = wearer_cities.reading_date

)

select * from join_tiers
