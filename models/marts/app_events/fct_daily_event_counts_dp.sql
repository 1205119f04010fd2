-- Differentially private daily event counts and purchase revenue per event
-- type and region. Every run is a release: the pre-hook records its epsilon
-- in the budget ledger, or stops the build when the period's budget would be
-- exceeded.
--
-- Sensitivity comes from explicit contribution bounds, not from the data:
-- each member counts at most dp_max_events_per_user_cell events (and
-- dp_max_amount_eur_per_user_cell euros) in a cell, in at most
-- dp_max_cells_per_user cells. Adding or removing one member therefore moves
-- the counts by at most cells x events in total (L1), and the revenue by at
-- most cells x euros. Each measure gets half the epsilon.
-- The published cells are a fixed grid (every date in the data x every event
-- type x every region of the seed), so which cells exist reveals nothing.
{%- set epsilon = var('dp_daily_events_epsilon') | float %}
{%- set max_cells = var('dp_max_cells_per_user') | int %}
{%- set max_events = var('dp_max_events_per_user_cell') | int %}
{%- set max_amount = var('dp_max_amount_eur_per_user_cell') | float %}
{%- set count_sensitivity = max_cells * max_events %}
{%- set revenue_sensitivity = max_cells * max_amount %}
{{ config(pre_hook=[
    "{{ spend_privacy_budget(" ~ epsilon ~ ", " ~ count_sensitivity ~ ") }}",
]) }}

with

events as (

    select * from {{ ref('int_events_joined_to_users') }}

),

regions as (

    select distinct region from {{ ref('city_regions') }}

),

user_cell_contributions as (

    select
        user_pseudonym_id,
        event_date,
        event_type,
        region,
        least(count(*), {{ max_events }}) as clipped_events,
        least(coalesce(sum(amount_eur), 0), {{ max_amount }}) as clipped_revenue_eur
    from events
    group by user_pseudonym_id, event_date, event_type, region

),

rank_user_cells as (

    -- A member's cells are kept in a pseudo-random order that depends only
    -- on that member's own data, so the bound does not favour any cell.
    select
        *,
        row_number() over (
            partition by user_pseudonym_id
            order by xxhash64(user_pseudonym_id, event_date, event_type, region)
        ) as user_cell_rank
    from user_cell_contributions

),

bounded_cells as (

    select
        event_date,
        event_type,
        region,
        sum(clipped_events) as clipped_event_count,
        sum(clipped_revenue_eur) as clipped_revenue_eur
    from rank_user_cells
    where user_cell_rank <= {{ max_cells }}
    group by event_date, event_type, region

),

event_dates as (

    select distinct event_date from events

),

event_types as (

    select explode(array({{ "'" ~ var('app_event_types') | join("', '") ~ "'" }})) as event_type

),

grid as (

    select
        event_dates.event_date,
        event_types.event_type,
        regions.region
    from event_dates
    cross join event_types
    cross join regions

),

draw_noise as (

    select
        grid.event_date,
        grid.event_type,
        grid.region,
        coalesce(bounded_cells.clipped_event_count, 0) as clipped_event_count,
        coalesce(bounded_cells.clipped_revenue_eur, 0) as clipped_revenue_eur,
        {{ dp_uniform() }} as count_uniform,
        {{ dp_uniform(1) }} as revenue_uniform
    from grid
    left join bounded_cells
        on
            grid.event_date = bounded_cells.event_date
            and grid.event_type = bounded_cells.event_type
            and grid.region = bounded_cells.region

),

final as (

    -- Rounding and clamping at zero are post-processing: they cannot weaken
    -- the guarantee.
    select
        event_date,
        event_type,
        region,
        cast(greatest(0, round(
            clipped_event_count
            + {{ laplace_noise('count_uniform', count_sensitivity ~ ' / ' ~ (epsilon / 2)) }}
        )) as bigint) as noisy_event_count,
        cast(greatest(0, round(
            clipped_revenue_eur
            + {{ laplace_noise('revenue_uniform', revenue_sensitivity ~ ' / ' ~ (epsilon / 2)) }},
            2
        )) as decimal(14, 2)) as noisy_revenue_eur,
        cast({{ epsilon }} as double) as epsilon,
        cast({{ count_sensitivity / (epsilon / 2) }} as double) as count_noise_scale,
        cast({{ revenue_sensitivity / (epsilon / 2) }} as double) as revenue_noise_scale
    from draw_noise

)

select * from final
