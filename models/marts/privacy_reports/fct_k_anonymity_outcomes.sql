-- How k-anonymity enforcement treated the members of the anonymized users
-- table: how many kept their policy-level quasi-identifiers, were generalized
-- further (by level), or were suppressed.
with

assessed as (

    select * from {{ ref('int_users_k_anonymity_assessed') }}

),

final as (

    select
        k_anonymity_outcome,
        k_anonymity_level,
        count(*) as n_users
    from assessed
    group by k_anonymity_outcome, k_anonymity_level

)

select * from final
