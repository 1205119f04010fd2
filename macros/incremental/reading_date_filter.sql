{#-
    A `where` clause limiting `reading_date` to `dates` (from
    reading_dates_to_process), or nothing when `dates` is none (full build).
    Literal dates let Spark prune partitions.

    Arguments:
      dates: list of 'yyyy-MM-dd' strings, or none.
      column: the date column to filter (default reading_date).
-#}
{% macro reading_date_filter(dates, column='reading_date') -%}
    {%- if dates is none -%}
    {%- elif dates | length == 0 -%}
        where false
    {%- else -%}
        where {{ column }} in (
            {%- for d in dates %}date'{{ d }}'{{ ", " if not loop.last }}{% endfor -%}
        )
    {%- endif -%}
{%- endmacro %}
