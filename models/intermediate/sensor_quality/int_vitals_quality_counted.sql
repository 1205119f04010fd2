-- Per reading date, how many readings each quality rule removed: a sum over
-- int_member_day_readings_counted, which already counts every landed
-- reading by its outcome, so no reading is scanned again. The
-- subscription-dependent count is added in the mart.
with

member_day_values as (

    select * from {{ ref('int_member_day_readings_counted') }}

),

count_per_date as (

    select
        reading_date,
        sum(n_landed) as readings_in,
        sum(case when quality_flag = 'null_heart_rate' then n_landed else 0 end)
            as dropped_null_heart_rate,
        sum(case when quality_flag = 'out_of_range' then n_landed else 0 end)
            as dropped_out_of_range,
        max(landed_at) as landed_at,
        sum(n_duplicate) as dropped_duplicate,
        sum(n_frozen) as dropped_frozen,
        sum(n_valid) as readings_validated,
        count(distinct user_pseudonym_id) as n_members_in
    from member_day_values
    group by reading_date

)

select * from count_per_date
