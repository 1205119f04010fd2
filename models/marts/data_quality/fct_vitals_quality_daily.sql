-- Where every reading went, per reading date: readings in = the sum of the
-- drop reasons + readings out. A quality regression shows up here first.
-- A date is a cell of people: when fewer than min_cell_users members landed
-- readings that day, or fewer than that (but some) reached the matrix, the
-- row stays with every count NULL. readings_out is also the sum of that
-- day's cells in fct_city_daily_heart_rate (and over all dates, of
-- fct_city_heart_rate), so a single suppressed date would be the total minus
-- the others: with exactly one small date, the date with the fewest members
-- is suppressed with it, and the daily mart suppresses every cell of a
-- suppressed date.
{%- set k = var('min_cell_users') %}

with

quality_counts as (

    select * from {{ ref('int_vitals_quality_counted') }}

),

subscribed as (

    select * from {{ ref('int_readings_joined_to_subscriptions') }}

),

subscribed_counts as (

    -- Recomputed in full on every build: who has a subscription can change
    -- for any past date.
    select
        reading_date,
        sum(n_readings) as readings_out,
        count(distinct user_pseudonym_id) as n_members_out
    from subscribed
    group by reading_date

),

joined as (

    select
        quality_counts.reading_date,
        quality_counts.n_members_in,
        quality_counts.readings_in,
        quality_counts.dropped_null_heart_rate,
        quality_counts.dropped_out_of_range,
        quality_counts.dropped_duplicate,
        quality_counts.dropped_frozen,
        quality_counts.readings_validated
        - coalesce(subscribed_counts.readings_out, 0) as dropped_no_subscription,
        coalesce(subscribed_counts.readings_out, 0) as readings_out,
        coalesce(subscribed_counts.n_members_out, 0) as n_members_out
    from quality_counts
    left join subscribed_counts
        on quality_counts.reading_date = subscribed_counts.reading_date

),

rank_complements as (

    select
        *,
        (
            n_members_in < {{ k }}
            or n_members_out between 1 and {{ k - 1 }}
        ) as is_small
    from joined

),

count_small as (

    select
        *,
        count_if(is_small) over () as n_small_dates,
        row_number() over (
            order by is_small desc, n_members_in asc, reading_date asc
        ) as members_rank
    from rank_complements

),

flag_suppressed as (

    -- With one small date, members_rank 1 is that date and 2 its complement.
    select
        *,
        is_small or (n_small_dates = 1 and members_rank = 2) as is_suppressed
    from count_small

),

final as (

    select
        reading_date,
        is_suppressed,
        case when not is_suppressed then readings_in end as readings_in,
        case when not is_suppressed then dropped_null_heart_rate end as dropped_null_heart_rate,
        case when not is_suppressed then dropped_out_of_range end as dropped_out_of_range,
        case when not is_suppressed then dropped_duplicate end as dropped_duplicate,
        case when not is_suppressed then dropped_frozen end as dropped_frozen,
        case when not is_suppressed then dropped_no_subscription end as dropped_no_subscription,
        case when not is_suppressed then readings_out end as readings_out
    from flag_suppressed

)

select * from final
