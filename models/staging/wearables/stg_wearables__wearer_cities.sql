-- The city of each consenting wearer on each reading date, for the city
-- marts only. Ephemeral on purpose: a stored (member, city) table would
-- single out the members of a small city, so the city never sits next to a
-- pseudonym in the anonymized zone; it is joined in inside the marts' own
-- queries and leaves them only as suppressed aggregates.
-- One city per member and date: the first by name if a day's readings name
-- several (a member who moved that day), so a reading's city is that of its
-- wearer's day.
with

source as (

    select * from {{ source('wearables', 'vitals') }}

),

consenting_members as (

    select user_id from {{ ref('base_app__analytics_consent') }}
    where has_analytics_consent

),

member_days as (

    -- Distinct first: the key is applied once per member and date, not per
    -- reading.
    select
        source.user_id,
        source.reading_date,
        min(source.city) as city
    from source
    left semi join consenting_members
        on source.user_id = consenting_members.user_id
    group by source.user_id, source.reading_date

),

renamed as (

    select
        {{ apply_privacy_policies('wearables', 'vitals', 'member_days',
            columns=['user_id', 'reading_date', 'city']) }}
    from member_days

)

select * from renamed
