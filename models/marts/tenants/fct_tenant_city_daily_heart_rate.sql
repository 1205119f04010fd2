-- Daily heart-rate trend per tenant, city and subscription tier: the
-- tenant's own fct_city_daily_heart_rate. Suppression is within the
-- tenant: a day with fewer than min_cell_users of the tenant's members
-- keeps its row (is_suppressed = true) but exposes no measure.
--
-- Complementary suppression (docs/privacy.md, tenants). Within a city x
-- tier, the day cells of each member group (each tenant, and the direct
-- consumers, whose cells are never published) add up over dates to the
-- group's all-dates cell (fct_tenant_city_heart_rate), and over groups to
-- the all-member day cell (fct_city_daily_heart_rate). So each hidden cell
-- is suppressed with a 2 x 2 rectangle of the same city x tier: another
-- day of its group, and the same two days of another group, cheapest
-- first (a direct consumers' cell costs nothing: it is hidden anyway).
-- Moving a value around the rectangle changes no published total. A
-- tenant's day is hidden when its all-dates cell or the all-member day is
-- suppressed; a direct consumers' day needs a rectangle when it is small.
-- A hidden cell with no rectangle suppresses every tenant cell of its city,
-- tier and day (macro complementary_rectangles, shared with
-- fct_city_daily_heart_rate).
{%- set k = var('min_cell_users') %}

with

readings as (

    select * from {{ ref('int_readings_joined_to_tenants') }}

),

tenant_series as (

    select * from {{ ref('fct_tenant_city_heart_rate') }}

),

all_member_days as (

    select * from {{ ref('fct_city_daily_heart_rate') }}

),

group_readings as (

    -- The direct consumers are the group '' (never a tenant id).
    select
        *,
        coalesce(tenant_id, '') as member_group
    from readings

),

-- Percentiles as in fct_city_daily_heart_rate (exact nearest rank).
{{ nearest_rank_percentiles(
    'group_readings', ['member_group', 'city', 'reading_date', 'subscription_type'],
    'heart_rate_bpm', 'n_readings', {'p50_heart_rate': 0.5, 'p90_heart_rate': 0.9}) }},

aggregate_group_days as (

    select
        group_readings.city,
        group_readings.reading_date,
        group_readings.subscription_type,
        group_readings.member_group,
        count(distinct group_readings.user_pseudonym_id) as n_users,
        sum(group_readings.n_readings) as n_readings,
        sum(group_readings.heart_rate_bpm * group_readings.n_readings)
        / sum(group_readings.n_readings) as avg_heart_rate,
        min(cell_percentiles.p50_heart_rate) as p50_heart_rate,
        min(cell_percentiles.p90_heart_rate) as p90_heart_rate
    from group_readings
    inner join cell_percentiles
        on
            group_readings.member_group = cell_percentiles.member_group
            and group_readings.city = cell_percentiles.city
            and group_readings.reading_date = cell_percentiles.reading_date
            and group_readings.subscription_type = cell_percentiles.subscription_type
    group by
        group_readings.member_group, group_readings.city,
        group_readings.reading_date, group_readings.subscription_type

),

flag_hidden as (

    select
        group_days.*,
        (
            group_days.member_group = ''
            or group_days.n_users < {{ k }}
            or coalesce(tenant_series.is_suppressed, true)
            or coalesce(all_member_days.is_suppressed, true)
        ) as is_hidden,
        (
            group_days.member_group != ''
            and (
                group_days.n_users < {{ k }}
                or coalesce(tenant_series.is_suppressed, true)
                or coalesce(all_member_days.is_suppressed, true)
            )
            or group_days.member_group = '' and group_days.n_users < {{ k }}
        ) as needs_rectangle
    from aggregate_group_days as group_days
    left join tenant_series
        on
            group_days.member_group = tenant_series.tenant_id
            and group_days.city = tenant_series.city
            and group_days.subscription_type = tenant_series.subscription_type
    left join all_member_days
        on
            group_days.city = all_member_days.city
            and group_days.reading_date = all_member_days.reading_date
            and group_days.subscription_type = all_member_days.subscription_type

),

-- A direct consumers' cell costs nothing in a rectangle: it is hidden anyway.
{{ complementary_rectangles(
    'flag_hidden', ['member_group', 'city', 'subscription_type'], 'reading_date',
    block=['city', 'subscription_type'], hidden='is_hidden', needs='needs_rectangle') }},

suppress_cells as (

    select
        flag_hidden.member_group as tenant_id,
        flag_hidden.city,
        flag_hidden.reading_date,
        flag_hidden.subscription_type,
        flag_hidden.n_users,
        flag_hidden.n_readings,
        flag_hidden.avg_heart_rate,
        flag_hidden.p50_heart_rate,
        flag_hidden.p90_heart_rate,
        flag_hidden.is_hidden or complement_cells.city is not null as is_suppressed
    from flag_hidden
    left join complement_cells
        on
            flag_hidden.member_group = complement_cells.member_group
            and flag_hidden.city = complement_cells.city
            and flag_hidden.subscription_type = complement_cells.subscription_type
            and flag_hidden.reading_date = complement_cells.reading_date
    where flag_hidden.member_group != ''

),

final as (

    select
        tenant_id,
        city,
        reading_date,
        subscription_type,
        is_suppressed,
        case when not is_suppressed then n_users end as n_users,
        case when not is_suppressed then n_readings end as n_readings,
        case when not is_suppressed then avg_heart_rate end as avg_heart_rate,
        case when not is_suppressed then p50_heart_rate end as p50_heart_rate,
        case when not is_suppressed then p90_heart_rate end as p90_heart_rate
    from suppress_cells

)

select * from final
