-- The sponsoring organization (tenant) of each consenting member who has
-- one, for the tenant marts only. Ephemeral on purpose, like
-- stg_wearables__wearer_cities: a stored (member, tenant) table would single
-- out the members of a small sponsor, so the tenant never sits next to a
-- pseudonym in the anonymized zone; it is joined in inside the tenant marts'
-- own queries and leaves them only as suppressed aggregates.
with

consenting_members as (

    select user_id from {{ ref('base_app__analytics_consent') }}
    where has_analytics_consent

),

source as (

    select
        landed.user_id,
        landed.tenant_id
    from {{ source('app', 'users') }} as landed
    left semi join consenting_members
        on landed.user_id = consenting_members.user_id
    where landed.tenant_id is not null

),

renamed as (

    select
        {{ apply_privacy_policies('app', 'users', columns=['user_id', 'tenant_id']) }}
    from source

)

select * from renamed
