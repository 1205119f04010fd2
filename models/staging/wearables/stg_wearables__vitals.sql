-- Pseudonymization happens here: each raw column is treated as its policy in
-- _wearables__sources.yml declares (the user id -> keyed HMAC pseudonym; the
-- name and device id dropped), and the raw ids never leave this model.
-- Only members who consented to analytics are carried.
-- The city is left out: a stored reading with the member's city singles out
-- the members of a small city. The marts take it from the ephemeral
-- stg_wearables__wearer_cities, so it reaches only suppressed aggregates.
-- Incremental by reading_date: only dates with newly landed rows (or within
-- the lookback), and dates whose consenting members changed (a withdrawal or
-- a grant), are pseudonymized again.
{%- set dates = reading_dates_to_process(
    source('wearables', 'vitals'), '_loaded_at',
    also_rebuild=reading_dates_of_consent_changes(source('wearables', 'vitals'), 'user_pseudonym_id')) %}

with

source as (

    select * from {{ source('wearables', 'vitals') }}
    {{ reading_date_filter(dates) }}

),

consenting_members as (

    select user_id from {{ ref('base_app__analytics_consent') }}
    where has_analytics_consent

),

consented as (

    select source.*
    from source
    left semi join consenting_members
        on source.user_id = consenting_members.user_id

),

renamed as (

    select
        {{ apply_privacy_policies('wearables', 'vitals', 'consented', exclude=['city']) }},

        -- quality
        case
            when consented.heart_rate is null then 'null_heart_rate'
            when
                consented.heart_rate < {{ var('heart_rate_min_bpm') }}
                or consented.heart_rate > {{ var('heart_rate_max_bpm') }}
                then 'out_of_range'
            else 'ok'
        end as quality_flag

    from consented

)

select * from renamed
