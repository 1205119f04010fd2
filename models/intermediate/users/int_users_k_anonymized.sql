-- The users table of the anonymized zone: k-anonymous for its declared
-- quasi-identifiers (see _users__models.yml), suppressed members left out.
-- It carries the member under a pseudonym of its own domain, not the
-- pseudonym of vitals and events: joined to them, its generalized attributes
-- would sit next to each member's readings and events, and an anti-join
-- would list exactly the suppressed members. Contact data, lifetime value,
-- status and tier stay out (data minimization: the marts read them from the
-- ephemeral stg_app__users).
with

assessed as (

    select * from {{ ref('int_users_k_anonymity_assessed') }}

),

final as (

    select
        -- ids
        {{ domain_pseudonym('user_pseudonym_id', 'users') }} as profile_pseudonym_id,
        national_id_token,

        -- quasi-identifiers, as published
        age_band,
        gender,
        postcode_prefix,
        region,
        country,

        -- privacy bookkeeping
        k_anonymity_level,
        pseudonym_key_version
    from assessed
    where k_anonymity_outcome != 'suppressed'

)

select * from final
