-- Every consenting member with the outcome of k-anonymity enforcement over
-- the quasi-identifiers age_band, gender, postcode_prefix, region and
-- country. Members in a group smaller than k are generalized one step at a
-- time (postcode, then age band, then gender); any still below k are
-- suppressed. Region and country are never generalized: the event marts
-- publish regions anyway.
-- Ephemeral: never stored, it feeds both the anonymized users table and the
-- outcome counts, so the two come from one computation.
{%- set ladder = [
    {'age_band': 'age_band', 'gender': 'gender', 'postcode_prefix': 'postcode_prefix', 'region': 'region', 'country': 'country'},
    {'age_band': 'age_band', 'gender': 'gender', 'postcode_prefix': "'*'", 'region': 'region', 'country': 'country'},
    {'age_band': "'*'", 'gender': 'gender', 'postcode_prefix': "'*'", 'region': 'region', 'country': 'country'},
    {'age_band': "'*'", 'gender': "'*'", 'postcode_prefix': "'*'", 'region': 'region', 'country': 'country'},
] %}

with

users as (

    select * from {{ ref('stg_app__users') }}

),

{{ enforce_k_anonymity('users', 'user_pseudonym_id', ladder, var('k_anonymity_k')) }},

final as (

    select
        -- ids
        users.user_pseudonym_id,
        users.national_id_token,

        -- quasi-identifiers, as published
        k_anonymity_enforced.age_band,
        k_anonymity_enforced.gender,
        k_anonymity_enforced.postcode_prefix,
        k_anonymity_enforced.region,
        k_anonymity_enforced.country,

        -- privacy bookkeeping
        k_anonymity_enforced.k_anonymity_level,
        k_anonymity_enforced.k_anonymity_outcome,
        users.pseudonym_key_version

    from users
    inner join k_anonymity_enforced
        on users.user_pseudonym_id = k_anonymity_enforced.user_pseudonym_id

)

select * from final
