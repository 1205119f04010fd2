{#-
    A measure of an aggregate cell, or NULL when the cell holds fewer than k
    distinct people: small cells single out individuals. The row itself is
    kept (with an `is_suppressed` flag set by the caller), so consumers see
    that a cell exists but not its value.

    Arguments:
      measure: SQL expression to publish.
      group_size: SQL expression giving the number of distinct people in the cell.
      k: minimum number of people (default: var min_cell_users).
-#}
{% macro suppress_small_cell(measure, group_size, k=none) -%}
    case when {{ group_size }} >= {{ k if k is not none else var('min_cell_users') }} then {{ measure }} end
{%- endmacro %}
