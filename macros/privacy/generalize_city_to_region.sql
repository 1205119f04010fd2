{#-
    The region of a city, from the `city_regions` seed; 'Unknown' when the
    seed does not list the city (a relationships test on the source warns).
    A correlated scalar subquery, so it fits in a select list; Spark plans it
    as a join against the small seed.

    Arguments:
      column: the city column, qualified by its relation alias.
-#}
{% macro generalize_city_to_region(column) -%}
    coalesce(
        (
            select max(city_regions.region)
            from {{ ref('city_regions') }} as city_regions
            where city_regions.city = {{ column }}
        ),
        'Unknown'
    )
{%- endmacro %}
