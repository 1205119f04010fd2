-- Valid, subscribed readings (counted per member, date and heart-rate
-- value) with the wearer's city, tier and tenant (NULL
-- for a direct consumer), for the tenant marts only.
-- Ephemeral: stored, it would name each member's tenant, city and tier
-- next to their readings; compiled into the tenant marts' own queries.
with

readings as (

    select * from {{ ref('int_readings_joined_to_subscriptions') }}

),

member_tenants as (

    select * from {{ ref('stg_app__member_tenants') }}

),

join_tenants as (

    -- Left join: the direct consumers stay, as the group the tenant marts
    -- must keep from being derived (all-member cell minus tenant cells).
    select /*+ broadcast(member_tenants) */
        readings.user_pseudonym_id,
        member_tenants.tenant_id,
        readings.city,
        readings.reading_date,
        readings.subscription_type,
        readings.heart_rate_bpm,
        readings.n_readings
    from readings
    left join member_tenants
        on readings.user_pseudonym_id = member_tenants.user_pseudonym_id

)

select * from join_tenants
