{#-
    Predicate: the member behind `user_id_column` consents to analytics now.
    Every staging model that reads personal data filters on it, so members
    without consent reach neither the anonymized nor the analytics zone.

    Current consent is the member's latest analytics event in
    raw.consent_events (grant or withdraw) or, if they have none, the
    consent_analytics flag of their profile, which is the state before any
    recorded change. Two events at the same second resolve to withdraw: when
    in doubt, a member is out. A member unknown to raw.users has no consent,
    whatever events name them, since staging cannot check who they are.

    A semi-join on the raw tables, evaluated inside the model's query, so the
    consent state never becomes a relation of its own outside the raw zone.

    Arguments:
      user_id_column: the raw user id column of the model's source.
-#}
{% macro has_analytics_consent(user_id_column) -%}
    {{ user_id_column }} in (
        select consent_profiles.user_id
        from {{ source('app', 'users') }} as consent_profiles
        left join (
            select
                consent_changes.user_id,
                -- struct order: the latest event_ts first, then withdraw
                -- (true) over grant (false) on a tie.
                max_by(
                    consent_changes.action = 'grant',
                    struct(consent_changes.event_ts, consent_changes.action = 'withdraw')
                ) as is_granted
            from {{ source('app', 'consent_events') }} as consent_changes
            where consent_changes.consent_type = 'analytics'
            group by consent_changes.user_id
        ) as latest_consent
            on consent_profiles.user_id = latest_consent.user_id
        where coalesce(latest_consent.is_granted, consent_profiles.consent_analytics)
    )
{%- endmacro %}
