-- App events with the member's generalized attributes (region, age band,
-- device) attached, for the event marts. Ephemeral: the join would put
-- per-event quasi-identifiers in a table, which nothing downstream needs
-- stored.
with

events as (

    select * from {{ ref('stg_app__events') }}

),

users as (

    select * from {{ ref('stg_app__users') }}

),

joined as (

    select
        events.event_pseudonym_id,
        events.user_pseudonym_id,
        events.event_type,
        events.event_at,
        events.event_date,
        events.device_type,
        events.amount_eur,
        users.region,
        users.age_band
    from events
    inner join users
        on events.user_pseudonym_id = users.user_pseudonym_id

)

select * from joined
