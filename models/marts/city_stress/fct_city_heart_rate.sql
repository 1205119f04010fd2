-- Average heart rate per city and subscription tier. A cell with fewer than
-- min_cell_users distinct users keeps its row (is_suppressed = true) but
-- exposes no measure: small cells single out individuals.
-- Complementary suppression: the cells' reading counts add up to the total
-- that fct_vitals_quality_daily publishes (readings_out over all dates), so a
-- single suppressed cell would be that total minus the published ones. When
-- exactly one cell is small, the published cell with the fewest users is
-- suppressed with it (docs/privacy.md, differencing).
{%- set k = var('min_cell_users') %}

with

readings as (

    select * from {{ ref('int_readings_joined_to_subscriptions') }}

),

aggregate_cells as (

    select
        city,
        subscription_type,
        count(distinct user_pseudonym_id) as n_users,
        sum(n_readings) as n_readings,
        -- Rows count readings per member, date and value: an exact
        -- integer sum over an exact count.
        sum(heart_rate_bpm * n_readings) / sum(n_readings) as avg_heart_rate
    from readings
    group by city, subscription_type

),

rank_complements as (

    select
        *,
        n_users < {{ k }} as is_small,
        count_if(n_users < {{ k }}) over () as n_small_cells,
        row_number() over (
            order by n_users >= {{ k }}, n_users, n_readings, city, subscription_type
        ) as users_rank
    from aggregate_cells

),

suppress_small_cells as (

    -- With one small cell, users_rank 1 is that cell and 2 its complement.
    select
        city,
        subscription_type,
        n_users,
        n_readings,
        avg_heart_rate,
        is_small or (n_small_cells = 1 and users_rank = 2) as is_suppressed
    from rank_complements

),

final as (

    select
        city,
        subscription_type,
        is_suppressed,
        case when not is_suppressed then n_users end as n_users,
        case when not is_suppressed then n_readings end as n_readings,
        case when not is_suppressed then avg_heart_rate end as avg_heart_rate
    from suppress_small_cells

)

select * from final
