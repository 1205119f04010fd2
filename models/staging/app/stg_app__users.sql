-- Members who consented to analytics, with every column treated as its
-- declared policy says (models/staging/app/_app__sources.yml): pseudonymized,
-- masked, tokenized, generalized or dropped. The tenant is left out: the
-- users table's k-anonymity does not cover it; the tenant marts take it from
-- the ephemeral stg_app__member_tenants.
-- Ephemeral on purpose: this row set is not yet k-anonymous, so it is never
-- stored; int_users_k_anonymized is the users table of the anonymized zone.
-- depends_on: {{ ref('token_vault') }}
-- depends_on: {{ ref('city_regions') }}
with

consenting_members as (

    select user_id from {{ ref('base_app__analytics_consent') }}
    where has_analytics_consent

),

source as (

    select landed.*
    from {{ source('app', 'users') }} as landed
    left semi join consenting_members
        on landed.user_id = consenting_members.user_id

),

renamed as (

    select
        {{ apply_privacy_policies('app', 'users', exclude=['tenant_id']) }}
    from source

)

select * from renamed
