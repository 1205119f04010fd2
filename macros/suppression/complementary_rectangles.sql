{#-
    Complementary suppression by 2 x 2 rectangles, for a mart whose cells
    add up along two published totals: over dates to a series' total, and
    over the series of a date (within a block) to that date's total.
    Emits CTEs; the last, `complement_cells`, lists the series columns and
    the date of every cell to suppress besides the already hidden ones.

    Each cell that needs protection gets the cheapest rectangle: another
    date of its series, and the same two dates of another series of its
    block, counting the users of corners not hidden yet. Moving a value
    around a rectangle changes neither total, so no suppressed cell can be
    solved from them. A cell with no rectangle (its series has one date, or
    its block one series that date) takes every cell of its block and date.
    Used by fct_city_daily_heart_rate and fct_tenant_city_daily_heart_rate
    (docs/privacy.md).

    Arguments:
      input_cte: the CTE of cells: the series columns, date_column, n_users,
        and the two flags below.
      series: columns that name a series (one cell per series and date).
      date_column: the date column.
      block: series columns a partner series must share (default: none, any
        series of the date).
      hidden: boolean column: the cell is suppressed anyway (costs nothing).
      needs: boolean column: the cell needs a rectangle.
-#}
{% macro complementary_rectangles(input_cte, series, date_column, block=[], hidden='is_hidden', needs='needs_rectangle') %}
{%- set d = date_column -%}
rank_rectangles as (

    -- Every rectangle (cell, its series' other date, a partner series'
    -- same date, the partner's other date), cheapest first.
    select
        {% for column in series -%}
        hidden_cell.{{ column }},
        partner_day.{{ column }} as partner_{{ column }},
        {% endfor -%}
        hidden_cell.{{ d }},
        other_day.{{ d }} as other_{{ d }},
        row_number() over (
            partition by {% for column in series %}hidden_cell.{{ column }}, {% endfor %}hidden_cell.{{ d }}
            order by
                case when other_day.{{ hidden }} then 0 else other_day.n_users end
                + case when partner_day.{{ hidden }} then 0 else partner_day.n_users end
                + case when partner_other_day.{{ hidden }} then 0 else partner_other_day.n_users end,
                {% for column in series -%}
                partner_day.{{ column }},
                {% endfor -%}
                other_day.{{ d }}
        ) as rectangle_rank
    from {{ input_cte }} as hidden_cell
    inner join {{ input_cte }} as other_day
        on
            {% for column in series -%}
            hidden_cell.{{ column }} = other_day.{{ column }}
            and {% endfor -%}
            hidden_cell.{{ d }} != other_day.{{ d }}
    inner join {{ input_cte }} as partner_day
        on
            {% for column in block -%}
            hidden_cell.{{ column }} = partner_day.{{ column }}
            and {% endfor -%}
            hidden_cell.{{ d }} = partner_day.{{ d }}
            and not (
                {% for column in series -%}
                hidden_cell.{{ column }} = partner_day.{{ column }}{% if not loop.last %}
                and {% endif %}
                {% endfor -%}
            )
    inner join {{ input_cte }} as partner_other_day
        on
            {% for column in series -%}
            partner_day.{{ column }} = partner_other_day.{{ column }}
            and {% endfor -%}
            other_day.{{ d }} = partner_other_day.{{ d }}
    where hidden_cell.{{ needs }}

),

rectangle_cells as (

    -- The four corners of each cell's cheapest rectangle.
    select
        stack(
            4,
            {% for column in series %}{{ column }}, {% endfor %}{{ d }},
            {% for column in series %}{{ column }}, {% endfor %}other_{{ d }},
            {% for column in series %}partner_{{ column }}, {% endfor %}{{ d }},
            {% for column in series %}partner_{{ column }}, {% endfor %}other_{{ d }}
        ) as ({% for column in series %}{{ column }}, {% endfor %}{{ d }})
    from rank_rectangles
    where rectangle_rank = 1

),

blocks_without_rectangle as (

    select distinct
        {% for column in block %}hidden_cell.{{ column }}, {% endfor %}hidden_cell.{{ d }}
    from {{ input_cte }} as hidden_cell
    left anti join rank_rectangles
        on
            {% for column in series -%}
            hidden_cell.{{ column }} = rank_rectangles.{{ column }}
            and {% endfor -%}
            hidden_cell.{{ d }} = rank_rectangles.{{ d }}
    where hidden_cell.{{ needs }}

),

complement_cells as (

    select
        {% for column in series %}{{ column }}, {% endfor %}{{ d }}
    from rectangle_cells
    union
    select
        {% for column in series %}{{ input_cte }}.{{ column }}, {% endfor %}{{ input_cte }}.{{ d }}
    from {{ input_cte }}
    left semi join blocks_without_rectangle
        on
            {% for column in block -%}
            {{ input_cte }}.{{ column }} = blocks_without_rectangle.{{ column }}
            and {% endfor -%}
            {{ input_cte }}.{{ d }} = blocks_without_rectangle.{{ d }}

)
{%- endmacro %}
