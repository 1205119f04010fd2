-- Pseudonymization happens here: the raw user and device ids are replaced by
-- keyed HMAC pseudonyms and never leave this model.
-- Incremental by reading_date: only dates with newly landed rows (or within
-- the lookback) are pseudonymized again.
{%- set dates = reading_dates_to_process(source('wearables', 'vitals'), '_loaded_at') %}

with

source as (

    select * from {{ source('wearables', 'vitals') }}
    {{ reading_date_filter(dates) }}

),

renamed as (

    select
        -- ids
        {{ pseudonymize('user_id') }} as user_pseudonym_id,
        {{ pseudonymize('device_id') }} as device_pseudonym_id,

        -- person
        {{ mask_name('full_name') }} as full_name_masked,
        city,

        -- measures
        heart_rate as heart_rate_bpm,
        case
            when heart_rate is null then 'null_heart_rate'
            when
                heart_rate < {{ var('heart_rate_min_bpm') }}
                or heart_rate > {{ var('heart_rate_max_bpm') }}
                then 'out_of_range'
            else 'ok'
        end as quality_flag,

        -- timestamps
        reading_ts as reading_at,
        reading_date,
        _loaded_at as landed_at

    from source

)

select * from renamed
