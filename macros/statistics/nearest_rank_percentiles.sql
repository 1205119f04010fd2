{#-
    Exact nearest-rank percentiles from (value, count) rows: for fraction p,
    the smallest value with at least p of the cell's weight at or below it,
    so always a value that occurs in the cell. The vitals marts read
    readings counted per member, date and value, not one row per reading,
    so Spark's percentile_approx (which counts rows) cannot be used.
    Emits two CTEs; the last, `cell_percentiles`, has the cell columns and
    one double column per percentile.

    Arguments:
      input_cte: the CTE to read: the cell columns, value_column and
        weight_column.
      cells: columns that name a cell (the percentiles' group by).
      value_column: the numeric column whose percentiles are wanted.
      weight_column: how many observations each row stands for.
      percentiles: mapping of output column name to fraction in (0, 1].
-#}
{% macro nearest_rank_percentiles(input_cte, cells, value_column, weight_column, percentiles) %}
cumulate_percentile_values as (

    -- Weight at or below each distinct value of a cell, and the cell total.
    select
        {% for column in cells -%}
        {{ column }},
        {% endfor -%}
        {{ value_column }} as percentile_value,
        sum(sum({{ weight_column }})) over (
            partition by {{ cells | join(', ') }}
            order by {{ value_column }}
            rows between unbounded preceding and current row
        ) as weight_at_or_below,
        sum(sum({{ weight_column }})) over (partition by {{ cells | join(', ') }}) as cell_weight
    from {{ input_cte }}
    group by {% for column in cells %}{{ column }}, {% endfor %}{{ value_column }}

),

cell_percentiles as (

    select
        {% for column in cells -%}
        {{ column }},
        {% endfor -%}
        {% for name, fraction in percentiles.items() -%}
        cast(
            min(case when weight_at_or_below >= {{ fraction }} * cell_weight then percentile_value end)
            as double
        ) as {{ name }}{{ "," if not loop.last }}
        {% endfor %}
    from cumulate_percentile_values
    group by {{ cells | join(', ') }}

)
{%- endmacro %}
