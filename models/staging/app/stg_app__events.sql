-- App events of members who consented to analytics, with every column
-- treated as its declared policy says (_app__sources.yml): ids pseudonymized
-- with the same key as vitals and billing, IP addresses truncated.
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

)

select * from renamed
