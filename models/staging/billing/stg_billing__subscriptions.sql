-- One current subscription per user. Pseudonymization happens here: the raw
-- user id never leaves this model.
with

source as (

    select * from {{ source('billing', 'subscriptions') }}

),

renamed as (

    select
        -- ids
        {{ pseudonymize('user_id') }} as user_pseudonym_id,

        -- plan
        subscription_type,

        -- dates
        start_date,

        -- lineage
        _source_file as source_file,
        _source_line as source_line

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
