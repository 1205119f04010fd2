-- Every member's analytics consent now: the one place the consent rule lives.
-- Staging joins it, so each staging model reads its own source plus this
-- model, and the lineage graph shows it. It holds raw user ids, so it is a
-- table of the restricted `raw` zone; consent state exists nowhere else.
-- A base model (dbt's name for a join of tables of one source made before
-- staging): both inputs belong to the `app` source.
with

profiles as (

    select * from {{ source('app', 'users') }}

),

consent_events as (

    select * from {{ source('app', 'consent_events') }}

),

latest_analytics_event as (

    -- The latest event wins. The struct orders by event_ts, then withdraw
    -- (true) over grant (false): two events in the same second resolve to
    -- withdraw, because when in doubt a member is out.
    select
        consent_events.user_id,
        max_by(
            consent_events.action = 'grant',
            struct(consent_events.event_ts, consent_events.action = 'withdraw')
        ) as is_granted,
        max(consent_events.event_ts) as changed_at
    from consent_events
    where consent_events.consent_type = 'analytics'
    group by consent_events.user_id

),

final as (

    -- Driven by the profiles: a member unknown to raw.users has no consent,
    -- whatever events name them, since nobody can check who they are. The
    -- profile flag is the state before any recorded change.
    select
        profiles.user_id,
        latest_analytics_event.changed_at as consent_changed_at,
        coalesce(
            latest_analytics_event.is_granted, profiles.consent_analytics, false
        ) as has_analytics_consent
    from profiles
    left join latest_analytics_event
        on profiles.user_id = latest_analytics_event.user_id

)

select * from final
