-- How k-anonymity enforcement treated the members of the anonymized users
-- table: how many kept their policy-level quasi-identifiers, were generalized
-- further (by level), or were suppressed. Each row counts people, so the
-- small-cell rule applies: a row with fewer than min_cell_users members
-- keeps its row with n_users NULL. The rows add up to the consenting
-- members, so with exactly one small row the smallest other row is
-- suppressed with it.
{%- set k = var('min_cell_users') %}

with

assessed as (

    select * from {{ ref('int_users_k_anonymity_assessed') }}

),

count_outcomes as (

    select
        k_anonymity_outcome,
        k_anonymity_level,
        count(*) as n_users
    from assessed
    group by k_anonymity_outcome, k_anonymity_level

),

rank_complements as (

    select
        *,
        count_if(n_users < {{ k }}) over () as n_small_rows,
        row_number() over (
            order by n_users >= {{ k }}, n_users, k_anonymity_level, k_anonymity_outcome
        ) as users_rank
    from count_outcomes

),

final as (

    -- With one small row, users_rank 1 is that row and 2 its complement.
    select
        k_anonymity_outcome,
        k_anonymity_level,
        n_users < {{ k }} or (n_small_rows = 1 and users_rank = 2) as is_suppressed,
        case
            when not (n_users < {{ k }} or (n_small_rows = 1 and users_rank = 2)) then n_users
        end as n_users
    from rank_complements

)

select * from final
