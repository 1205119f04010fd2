-- One current subscription per consenting member. Pseudonymization happens
-- here, as declared in _billing__sources.yml: the raw user id never leaves
-- this model. Ephemeral: never stored (see _billing__models.yml).
with

consenting_members as (

    select user_id from {{ ref('base_app__analytics_consent') }}
    where has_analytics_consent

),

source as (

    select landed.*
    from {{ source('billing', 'subscriptions') }} as landed
    left semi join consenting_members
        on landed.user_id = consenting_members.user_id

),

renamed as (

    select
        {{ apply_privacy_policies('billing', 'subscriptions') }}
    from source

),

ranked as (

    -- The latest plan wins, which also drops exact duplicate rows. On a
    -- same-day tie the row landed last wins, so the choice never depends on
    -- how Spark happens to order rows.
    select
        *,
        row_number() over (
            partition by user_pseudonym_id
            order by start_date desc, source_file desc, source_line desc
        ) as plan_recency_rank
    from renamed

),

final as (

    select
        user_pseudonym_id,
        subscription_type,
        start_date
    from ranked
    where plan_recency_rank = 1

)

select * from final
