{#-
    Age band from a date of birth: '30-39' for band_years = 10. Ages from
    top_age up share one open band ('90+'), because the very old are few and
    easy to single out. Age is computed on `privacy_as_of_date` (a var, so a
    rebuild is reproducible) or today.

    Arguments:
      column: SQL expression holding the date of birth.
      band_years: width of a band (default 10).
      top_age: first age of the open top band (default 90).
-#}
{% macro generalize_age_band(column, band_years=10, top_age=90) -%}
    {%- set as_of = var('privacy_as_of_date', none) -%}
    {%- set as_of_sql = "date'" ~ as_of ~ "'" if as_of else 'current_date()' -%}
    {%- set age = 'cast(floor(months_between(' ~ as_of_sql ~ ', ' ~ column ~ ') / 12) as int)' -%}
    case
        when {{ column }} is null or {{ age }} < 0 then null
        when {{ age }} >= {{ top_age }} then '{{ top_age }}+'
        else concat(
            cast(floor({{ age }} / {{ band_years }}) * {{ band_years }} as int),
            '-',
            cast(floor({{ age }} / {{ band_years }}) * {{ band_years }} + {{ band_years - 1 }} as int)
        )
    end
{%- endmacro %}
