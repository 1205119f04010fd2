-- Events and unique users per day, event type, region and device type. A
-- cell with fewer than min_cell_users distinct members keeps its row but no
-- measures.
with

events as (

    select * from {{ ref('int_events_joined_to_users') }}

),

aggregate_cells as (

    select
        event_date,
        event_type,
        region,
        device_type,
        count(*) as n_events,
        count(distinct user_pseudonym_id) as n_users
    from events
    group by event_date, event_type, region, device_type

),

final as (

    select
        event_date,
        event_type,
        region,
        device_type,
        n_users < {{ var('min_cell_users') }} as is_suppressed,
        {{ suppress_small_cell('n_events', 'n_users') }} as n_events,
        {{ suppress_small_cell('n_users', 'n_users') }} as n_unique_users
    from aggregate_cells

)

select * from final
