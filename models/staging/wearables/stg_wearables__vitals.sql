-- Pseudonymization happens here: the raw user and device ids are replaced by
-- keyed HMAC pseudonyms and never leave this model.
with

source as (

    select * from {{ source('wearables', 'vitals') }}

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
        reading_date

    from source

)

select * from renamed
