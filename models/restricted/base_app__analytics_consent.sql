-- Every member's analytics consent now: the one place the consent rule lives.
-- Staging joins it, so each staging model reads its own source plus this
-- model, and the lineage graph shows it. It holds raw user ids, so it is a
-- table of the restricted `raw` zone; consent state exists nowhere else.
-- A base model (dbt's name for a join of tables of one source made before
-- staging): the profiles and consent events of the `app` source, plus the
-- loader's quarantine, where a rejected consent line waits.
-- Consent fails closed: whatever a member recorded, a consent event dated
-- in the future or a quarantined consent line that names them holds them
-- out, because either may hide a withdrawal.
with

profiles as (

    select * from {{ source('app', 'users') }}

),

consent_events as (

    select * from {{ source('app', 'consent_events') }}

),

quarantine as (

    select * from {{ source('restricted', 'quarantine') }}

),

analytics_events as (

    -- Dated later than now plus the tolerated clock skew: the loader
    -- quarantines such lines against the load time, and the same rule against
    -- the build time also covers rows loaded before that check existed.
    select
        consent_events.user_id,
        consent_events.action,
        consent_events.event_ts,
        consent_events.event_ts > current_timestamp()
        + interval {{ var('clock_skew_tolerance_minutes') | int }} minutes as is_future_dated
    from consent_events
    where consent_events.consent_type = 'analytics'

),

latest_analytics_event as (

    -- The latest event wins. The struct orders by event_ts, then withdraw
    -- (true) over grant (false): two events in the same second resolve to
    -- withdraw, because when in doubt a member is out.
    select
        analytics_events.user_id,
        max_by(
            analytics_events.action = 'grant',
            struct(analytics_events.event_ts, analytics_events.action = 'withdraw')
        ) as is_granted,
        max(analytics_events.event_ts) as changed_at
    from analytics_events
    where not analytics_events.is_future_dated
    group by analytics_events.user_id

),

future_dated_holds as (

    select distinct
        analytics_events.user_id,
        'consent event dated in the future' as hold_reason
    from analytics_events
    where analytics_events.is_future_dated

),

quarantined_consent_lines as (

    -- Any rejected consent line may be a withdrawal the loader could not
    -- read (`WITHDRAW`, `revoke`, a bad date, a missing field). An exact
    -- duplicate of a loaded event is the one exception: its first occurrence
    -- is loaded, so it says nothing new.
    select quarantine.raw_line
    from quarantine
    where
        quarantine.dataset = 'consent_events'
        and not startswith(quarantine.reason, 'duplicate ')

),

named_in_quarantined_lines as (

    -- The line was not parsed, so every field that could be the member is a
    -- candidate: the first CSV field (where the contract puts user_id, and
    -- which may be quoted and hold a comma) and every token between
    -- separators (a line with the wrong delimiter).
    select distinct trim(named.candidate_id) as user_id
    from quarantined_consent_lines
        lateral view explode(
            array_union(
                split(quarantined_consent_lines.raw_line, '[\\s,;|"\\x27=]+'),
                array(from_csv(quarantined_consent_lines.raw_line, 'user_id string').user_id)
            )
        ) named as candidate_id

),

quarantine_holds as (

    -- Only a token that is a known member's id names someone: the other
    -- fields (consent type, action, date) match no profile.
    select
        profiles.user_id,
        'quarantined consent line' as hold_reason
    from named_in_quarantined_lines
    inner join profiles
        on named_in_quarantined_lines.user_id = profiles.user_id

),

holds as (

    select * from future_dated_holds
    union all
    select * from quarantine_holds

),

consent_holds as (

    select
        holds.user_id,
        array_join(array_sort(collect_set(holds.hold_reason)), '; ') as hold_reason
    from holds
    group by holds.user_id

),

final as (

    -- Driven by the profiles: a member unknown to raw.users has no consent,
    -- whatever events name them, since nobody can check who they are. The
    -- profile flag is the state before any recorded change.
    select
        profiles.user_id,
        latest_analytics_event.changed_at as consent_changed_at,
        consent_holds.hold_reason as consent_hold_reason,
        consent_holds.user_id is null
        and coalesce(
            latest_analytics_event.is_granted, profiles.consent_analytics, false
        ) as has_analytics_consent
    from profiles
    left join latest_analytics_event
        on profiles.user_id = latest_analytics_event.user_id
    left join consent_holds
        on profiles.user_id = consent_holds.user_id

)

select * from final
