-- The users table of the anonymized zone: k-anonymous for its declared
-- quasi-identifiers (see _users__models.yml), suppressed members left out.
with

assessed as (

    select * from {{ ref('int_users_k_anonymity_assessed') }}

),

final as (

    select
        -- ids
        user_pseudonym_id,
        national_id_token,

        -- quasi-identifiers, as published
        age_band,
        gender,
        postcode_prefix,
        region,
        country,

        -- masked contact data
        full_name_masked,
        email_masked,
        phone_masked,
        ip_address_masked,

        -- account
        account_status,
        subscription_tier,
        lifetime_value_eur,

        -- privacy bookkeeping
        k_anonymity_level,
        pseudonym_key_version
    from assessed
    where k_anonymity_outcome != 'suppressed'

)

select * from final
