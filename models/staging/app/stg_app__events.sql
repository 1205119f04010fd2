-- App events of members who consented to analytics, with every column
-- treated as its declared policy says (_app__sources.yml): ids pseudonymized
-- with the same key as vitals and billing; IP, session, browser, page and
-- referrer dropped (no mart needs them).
-- The device type is the one quasi-identifier left, so it is published only
-- when at least k members used it; rarer types become 'other', and if
-- 'other' would itself gather fewer than k members the column is withheld
-- (NULL) on every row, since a small 'other' group singles out as well.
{%- set k = var('k_anonymity_k') %}

with

consenting_members as (

    select user_id from {{ ref('base_app__analytics_consent') }}
    where has_analytics_consent

),

source as (

    select landed.*
    from {{ source('app', 'events') }} as landed
    left semi join consenting_members
        on landed.user_id = consenting_members.user_id

),

renamed as (

    select
        {{ apply_privacy_policies('app', 'events') }}
    from source

),

device_type_members as (

    select
        device_type,
        count(distinct user_pseudonym_id) as n_members
    from renamed
    group by device_type

),

rare_device_members as (

    select count(distinct renamed.user_pseudonym_id) as n_members
    from renamed
    inner join device_type_members
        on renamed.device_type <=> device_type_members.device_type
    where device_type_members.n_members < {{ k }}

),

generalize_device_type as (

    select
        renamed.event_pseudonym_id,
        renamed.user_pseudonym_id,
        renamed.event_type,
        renamed.event_at,
        case
            when rare_device_members.n_members between 1 and {{ k - 1 }} then null
            when device_type_members.n_members >= {{ k }} then renamed.device_type
            else 'other'
        end as device_type,
        renamed.amount_eur,
        renamed.event_date,
        renamed.landed_at,
        renamed.pseudonym_key_version
    from renamed
    inner join device_type_members
        on renamed.device_type <=> device_type_members.device_type
    cross join rare_device_members

)

select * from generalize_device_type
