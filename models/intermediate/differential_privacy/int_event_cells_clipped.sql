-- The exact input of the differentially private release: per cell of the
-- public domain (every declared date x every event type x every region of
-- the seed), the sum of the members' clipped contributions. A restricted-zone
-- table, filled only by `make release` (scripts/release_dp.py), which adds
-- OpenDP noise to it and publishes analytics.fct_daily_event_counts_dp.
--
-- The grid comes from the declared domain, not from the data, so whether a
-- cell exists reveals nothing about anyone. The sensitivity comes from the
-- contribution bounds, not from the data: a member counts at most
-- max_events_per_member_cell events and max_amount_cents_per_member_cell
-- cents in a cell, in at most max_cells_per_member cells.
{%- set release_id = dp_release_setting('release_id') %}
{%- set first_date = dp_release_setting('first_date') %}
{%- set last_date = dp_release_setting('last_date') %}
{%- set max_cells = dp_release_setting('max_cells_per_member') | int %}
{%- set max_events = dp_release_setting('max_events_per_member_cell') | int %}
{%- set max_cents = dp_release_setting('max_amount_cents_per_member_cell') | int %}
{#- Any build but a release's (a dev build reaching it through `+`, a hand-run
    `--selector release`) leaves it empty: no exact input at rest. #}
{%- set is_release = release_id != 'compile_only' %}
{%- if execute and not is_release and flags.WHICH in ('run', 'build') %}
    {% do exceptions.warn(
        "int_event_cells_clipped is filled only by `make release` (scripts/release_dp.py);"
        ~ " this build leaves it empty.") %}
{%- endif %}

with

events as (

    select * from {{ ref('int_events_joined_to_users') }}

),

regions as (

    select distinct region from {{ ref('city_regions') }}

),

event_types as (

    select explode(array({{ "'" ~ var('app_event_types') | join("', '") ~ "'" }})) as event_type

),

event_dates as (

    select
        explode(
            sequence(date'{{ first_date }}', date'{{ last_date }}', interval 1 day)
        ) as event_date

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

events_in_domain as (

    select events.*
    from events
    left semi join grid
        on
            events.event_date = grid.event_date
            and events.event_type = grid.event_type
            and events.region = grid.region

),

member_cell_contributions as (

    -- Clipped on both sides: the bound, not the loader's rules, fixes the
    -- sensitivity.
    select
        user_pseudonym_id,
        event_date,
        event_type,
        region,
        least(count(*), {{ max_events }}) as clipped_events,
        least(
            greatest(coalesce(sum(cast(round(amount_eur * 100) as bigint)), 0), 0),
            {{ max_cents }}
        ) as clipped_revenue_cents
    from events_in_domain
    group by user_pseudonym_id, event_date, event_type, region

),

rank_member_cells as (

    -- A member's cells are kept in a pseudo-random order that depends only
    -- on that member's own data, so the bound favours no cell.
    select
        *,
        row_number() over (
            partition by user_pseudonym_id
            order by xxhash64(user_pseudonym_id, event_date, event_type, region)
        ) as member_cell_rank
    from member_cell_contributions

),

bounded_cells as (

    select
        event_date,
        event_type,
        region,
        sum(clipped_events) as clipped_event_count,
        sum(clipped_revenue_cents) as clipped_revenue_cents
    from rank_member_cells
    where member_cell_rank <= {{ max_cells }}
    group by event_date, event_type, region

),

final as (

    select
        grid.event_date,
        grid.event_type,
        grid.region,
        cast(coalesce(bounded_cells.clipped_event_count, 0) as bigint) as clipped_event_count,
        cast(coalesce(bounded_cells.clipped_revenue_cents, 0) as bigint) as clipped_revenue_cents,
        '{{ release_id }}' as dp_release_id,
        {{ max_cells }} as max_cells_per_member,
        {{ max_events }} as max_events_per_member_cell,
        cast({{ max_cents }} as bigint) as max_amount_cents_per_member_cell
    from grid
    left join bounded_cells
        on
            grid.event_date = bounded_cells.event_date
            and grid.event_type = bounded_cells.event_type
            and grid.region = bounded_cells.region
    where {{ is_release }}

)

select * from final
