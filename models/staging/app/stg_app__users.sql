-- Members who consented to analytics, with every column treated as its
-- declared policy says (models/staging/app/_app__sources.yml): pseudonymized,
-- masked, tokenized, generalized or dropped.
-- Ephemeral on purpose: this row set is not yet k-anonymous, so it is never
-- stored; int_users_k_anonymized is the users table of the anonymized zone.
-- depends_on: {{ ref('token_vault') }}
-- depends_on: {{ ref('city_regions') }}
with

source as (

    select * from {{ source('app', 'users') }}
    where {{ has_analytics_consent('user_id') }}

),

renamed as (

    select
        {{ apply_privacy_policies('app', 'users') }}
    from source

)

select * from renamed
