-- Asserts that no daily city x tier cell discloses a small group: every cell
-- whose distinct users (recounted from the readings) fall below
-- min_cell_users is flagged is_suppressed, and every suppressed cell has
-- every measure NULL. Recounting guards against a rule applied to the wrong
-- count (readings instead of users) as well as against a leaked measure.
with

daily_cells as (

    select * from {{ ref('fct_city_daily_heart_rate') }}

),

readings as (

    select * from {{ ref('int_readings_joined_to_subscriptions') }}

),

recounted_users as (

    select
        city,
        reading_date,
        subscription_type,
        count(distinct user_pseudonym_id) as n_users_recounted
    from readings
    group by city, reading_date, subscription_type

),

small_cells_published as (

    select
        daily_cells.city,
        daily_cells.reading_date,
        daily_cells.subscription_type,
        'small cell not suppressed' as failure
    from daily_cells
    inner join recounted_users
        on
            daily_cells.city = recounted_users.city
            and daily_cells.reading_date = recounted_users.reading_date
            and daily_cells.subscription_type = recounted_users.subscription_type
    where
        recounted_users.n_users_recounted < {{ var('min_cell_users') }}
        and not daily_cells.is_suppressed

),

suppressed_cells_with_values as (

    select
        city,
        reading_date,
        subscription_type,
        'suppressed cell exposes a measure' as failure
    from daily_cells
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
    select * from suppressed_cells_with_values

)

select * from final
