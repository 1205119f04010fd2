-- Average heart rate per tenant, city and subscription tier: the tenant's
-- own City Stress Matrix cells. Suppression is within the tenant: a cell
-- with fewer than min_cell_users of the tenant's members keeps its row
-- (is_suppressed = true) but exposes no measure.
--
-- Across tenants (docs/privacy.md, tenants). The members of an all-member
-- cell of fct_city_heart_rate are split into groups: each tenant, and the
-- direct consumers, whose cells are never published. The all-member cell
-- minus the published tenant cells is what the hidden groups did together,
-- so whenever that remainder holds some but fewer than min_cell_users
-- people (one small tenant alone, or a few direct consumers), the
-- published tenant cell with the fewest users is suppressed with it: the
-- remainder then holds at least min_cell_users people of two groups. A
-- tenant cell of a suppressed all-member cell is suppressed too, or it
-- would bound or equal that cell.
{%- set k = var('min_cell_users') %}

with

readings as (

    select * from {{ ref('int_readings_joined_to_tenants') }}

),

all_member_cells as (

    select * from {{ ref('fct_city_heart_rate') }}

),

aggregate_group_cells as (

    -- The direct consumers are the group '' (never a tenant id).
    select
        city,
        subscription_type,
        coalesce(tenant_id, '') as member_group,
        count(distinct user_pseudonym_id) as n_users,
        sum(n_readings) as n_readings,
        sum(heart_rate_bpm * n_readings) / sum(n_readings) as avg_heart_rate
    from readings
    group by coalesce(tenant_id, ''), city, subscription_type

),

flag_hidden as (

    select
        group_cells.*,
        coalesce(all_member_cells.is_suppressed, true) as is_all_member_suppressed,
        (
            group_cells.member_group = ''
            or group_cells.n_users < {{ k }}
            or coalesce(all_member_cells.is_suppressed, true)
        ) as is_hidden
    from aggregate_group_cells as group_cells
    left join all_member_cells
        on
            group_cells.city = all_member_cells.city
            and group_cells.subscription_type = all_member_cells.subscription_type

),

rank_complements as (

    -- Per all-member cell: the users of the hidden groups (one member is in
    -- one group, so they add up), and the published tenant cells from the
    -- fewest users up.
    select
        *,
        sum(case when is_hidden then n_users else 0 end)
            over (partition by city, subscription_type)
            as hidden_users,
        row_number() over (
            partition by city, subscription_type
            order by is_hidden, n_users, n_readings, member_group
        ) as published_rank
    from flag_hidden

),

suppress_cells as (

    select
        member_group as tenant_id,
        city,
        subscription_type,
        n_users,
        n_readings,
        avg_heart_rate,
        is_hidden or (
            not is_all_member_suppressed
            and hidden_users > 0
            and hidden_users < {{ k }}
            and published_rank = 1
        ) as is_suppressed
    from rank_complements
    where member_group != ''

),

final as (

    select
        tenant_id,
        city,
        subscription_type,
        is_suppressed,
        case when not is_suppressed then n_users end as n_users,
        case when not is_suppressed then n_readings end as n_readings,
        case when not is_suppressed then avg_heart_rate end as avg_heart_rate
    from suppress_cells

)

select * from final
