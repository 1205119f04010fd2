-- Asserts that the tenant marts apply the small-cell rule within the
-- tenant: every tenant cell (all dates, or one day) whose distinct members
-- of that tenant (recounted from the readings) fall below min_cell_users is
-- suppressed; no tenant cell is published where the all-member cell is
-- suppressed; no row belongs to the direct consumers (no tenant); and every
-- suppressed cell has every measure NULL.
{%- set k = var('min_cell_users') %}

with

readings as (

    select * from {{ ref('int_readings_joined_to_tenants') }}

),

tenant_cells as (

    select * from {{ ref('fct_tenant_city_heart_rate') }}

),

tenant_days as (

    select * from {{ ref('fct_tenant_city_daily_heart_rate') }}

),

all_member_cells as (

    select * from {{ ref('fct_city_heart_rate') }}

),

all_member_days as (

    select * from {{ ref('fct_city_daily_heart_rate') }}

),

recounted_cells as (

    select
        tenant_id,
        city,
        subscription_type,
        count(distinct user_pseudonym_id) as n_users_recounted
    from readings
    where tenant_id is not null
    group by tenant_id, city, subscription_type

),

recounted_days as (

    select
        tenant_id,
        city,
        reading_date,
        subscription_type,
        count(distinct user_pseudonym_id) as n_users_recounted
    from readings
    where tenant_id is not null
    group by tenant_id, city, reading_date, subscription_type

),

small_cells_published as (

    select
        tenant_cells.tenant_id,
        tenant_cells.city,
        'small tenant cell not suppressed' as failure
    from tenant_cells
    left join recounted_cells
        on
            tenant_cells.tenant_id = recounted_cells.tenant_id
            and tenant_cells.city = recounted_cells.city
            and tenant_cells.subscription_type = recounted_cells.subscription_type
    where
        not tenant_cells.is_suppressed
        and coalesce(recounted_cells.n_users_recounted, 0) < {{ k }}

),

small_days_published as (

    select
        tenant_days.tenant_id,
        tenant_days.city,
        'small tenant day not suppressed' as failure
    from tenant_days
    left join recounted_days
        on
            tenant_days.tenant_id = recounted_days.tenant_id
            and tenant_days.city = recounted_days.city
            and tenant_days.reading_date = recounted_days.reading_date
            and tenant_days.subscription_type = recounted_days.subscription_type
    where
        not tenant_days.is_suppressed
        and coalesce(recounted_days.n_users_recounted, 0) < {{ k }}

),

cells_of_suppressed_all_member_cells as (

    select
        tenant_cells.tenant_id,
        tenant_cells.city,
        'tenant cell published in a suppressed all-member cell' as failure
    from tenant_cells
    inner join all_member_cells
        on
            tenant_cells.city = all_member_cells.city
            and tenant_cells.subscription_type = all_member_cells.subscription_type
    where not tenant_cells.is_suppressed and all_member_cells.is_suppressed

),

days_of_suppressed_all_member_days as (

    select
        tenant_days.tenant_id,
        tenant_days.city,
        'tenant day published in a suppressed all-member day' as failure
    from tenant_days
    inner join all_member_days
        on
            tenant_days.city = all_member_days.city
            and tenant_days.reading_date = all_member_days.reading_date
            and tenant_days.subscription_type = all_member_days.subscription_type
    where not tenant_days.is_suppressed and all_member_days.is_suppressed

),

rows_without_tenant as (

    select
        tenant_id,
        city,
        'row without a tenant' as failure
    from tenant_cells
    where tenant_id is null or tenant_id = ''
    union all
    select
        tenant_id,
        city,
        'row without a tenant' as failure
    from tenant_days
    where tenant_id is null or tenant_id = ''

),

suppressed_with_values as (

    select
        tenant_id,
        city,
        'suppressed tenant cell exposes a measure' as failure
    from tenant_cells
    where
        is_suppressed
        and (n_users is not null or n_readings is not null or avg_heart_rate is not null)
    union all
    select
        tenant_id,
        city,
        'suppressed tenant day exposes a measure' as failure
    from tenant_days
    where
        is_suppressed
        and (
            n_users is not null
            or n_readings is not null
            or avg_heart_rate is not null
            or p50_heart_rate is not null
            or p90_heart_rate is not null
        )

),

final as (

    select * from small_cells_published
    union all
    select * from small_days_published
    union all
    select * from cells_of_suppressed_all_member_cells
    union all
    select * from days_of_suppressed_all_member_days
    union all
    select * from rows_without_tenant
    union all
    select * from suppressed_with_values

)

select * from final
