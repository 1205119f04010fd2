-- One current subscription per user. Pseudonymization happens here: the raw
-- user id never leaves this model.
-- depends_on: {{ ref('subscription_tiers') }}
with

source as (

    select * from {{ source('billing', 'subscriptions') }}

),

renamed as (

    -- Exact duplicate landing rows describe one subscription.
    select distinct
        -- ids
        {{ pseudonymize('user_id') }} as user_pseudonym_id,

        -- plan
        subscription_type,
        {{ tier_rank('subscription_type') }} as tier_rank,

        -- dates
        start_date

    from source

),

ranked as (

    -- The latest plan wins; on a same-day tie the higher tier wins, so the
    -- choice never depends on row order.
    select
        *,
        row_number() over (
            partition by user_pseudonym_id
            order by start_date desc, tier_rank desc, subscription_type desc
        ) as plan_recency_rank
    from renamed

),

final as (

    select
        user_pseudonym_id,
        subscription_type,
        tier_rank,
        start_date
    from ranked
    where plan_recency_rank = 1

)

select * from final
