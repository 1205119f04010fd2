-- App events of members who consented to analytics, with every column
-- treated as its declared policy says (_app__sources.yml): ids pseudonymized
-- with the same key as vitals and billing, IP addresses truncated.
with

source as (

    select * from {{ source('app', 'events') }}
    where {{ has_analytics_consent('user_id') }}

),

renamed as (

    select
        {{ apply_privacy_policies('app', 'events') }}
    from source

)

select * from renamed
