-- Current subscribers per tier and region: how many, how long they have been
-- on the plan, and their average lifetime value. A cell with fewer than
-- min_cell_users members keeps its row but no measures.
with

subscriptions as (

    select * from {{ ref('stg_billing__subscriptions') }}

),

users as (

    select * from {{ ref('stg_app__users') }}

),

subscribers as (

    select
        subscriptions.subscription_type,
        users.region,
        subscriptions.user_pseudonym_id,
        subscriptions.start_date,
        users.lifetime_value_eur
    from subscriptions
    inner join users
        on subscriptions.user_pseudonym_id = users.user_pseudonym_id

),

aggregate_cells as (

    select
        subscription_type,
        region,
        count(*) as n_subscribers,
        avg(cast(datediff(current_date(), start_date) as double)) as avg_days_on_plan,
        avg(cast(lifetime_value_eur as double)) as avg_lifetime_value_eur
    from subscribers
    group by subscription_type, region

),

final as (

    select
        subscription_type,
        region,
        n_subscribers < {{ var('min_cell_users') }} as is_suppressed,
        {{ suppress_small_cell('n_subscribers', 'n_subscribers') }} as n_subscribers,
        {{ suppress_small_cell('avg_days_on_plan', 'n_subscribers') }} as avg_days_on_plan,
        {{ suppress_small_cell('avg_lifetime_value_eur', 'n_subscribers') }}
            as avg_lifetime_value_eur
    from aggregate_cells

)

select * from final
