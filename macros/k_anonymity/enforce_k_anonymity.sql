{#-
    CTEs that make a row set k-anonymous for its quasi-identifiers, by
    generalizing step by step and suppressing what is still unique.

    `levels` is a generalization ladder: a list of dicts, one per level, each
    mapping every quasi-identifier to the SQL expression published at that
    level (level 0 = as the policy generalized it; later levels coarser, e.g.
    '*'). Rows whose level-0 group has at least k rows keep level 0; the rest
    move to level 1 and are regrouped among themselves; and so on. Rows in a
    group smaller than k at the last level are suppressed. A final pass
    recounts the published tuples over all kept rows and suppresses any group
    still below k, so the result is k-anonymous however the ladder is written.

    Emits CTEs ending in `k_anonymity_enforced`: one row per input row, with
    row_key, the published quasi-identifiers, `k_anonymity_level` and
    `k_anonymity_outcome` ('kept', 'generalized' or 'suppressed'). The caller
    joins the other columns back on row_key, filters out suppressed rows and
    can count the outcomes.

    Arguments:
      input_cte: name of the CTE holding the rows.
      row_key: a column that identifies a row uniquely (e.g. the pseudonym).
      levels: the generalization ladder (list of dicts).
      k: minimum group size.
-#}
{% macro enforce_k_anonymity(input_cte, row_key, levels, k) %}
    {%- set qis = levels[0].keys() | list -%}
    {%- for level in levels %}
    {%- set level_index = loop.index0 %}
k_anonymity_level_{{ level_index }} as (

    select
        k_input.{{ row_key }},
        {%- for qi in qis %}
        {{ level[qi] }} as {{ qi }},
        {%- endfor %}
        {{ level_index }} as k_anonymity_level,
        count(*) over (partition by {% for qi in qis %}{{ level[qi] }}{{ ', ' if not loop.last }}{% endfor %}) as k_group_size
    from {{ input_cte }} as k_input
    {%- if level_index > 0 %}
    where k_input.{{ row_key }} in (
        select k_previous.{{ row_key }}
        from k_anonymity_level_{{ level_index - 1 }} as k_previous
        where k_previous.k_group_size < {{ k }}
    )
    {%- endif %}

),
    {%- endfor %}

k_anonymity_assigned as (
    {%- for level in levels %}
    select * from k_anonymity_level_{{ loop.index0 }}
    where k_group_size >= {{ k }}
    union all
    {%- endfor %}
    select
        {{ row_key }},
        {%- for qi in qis %}
        cast(null as string) as {{ qi }},
        {%- endfor %}
        {{ levels | length }} as k_anonymity_level,
        0 as k_group_size
    from k_anonymity_level_{{ levels | length - 1 }}
    where k_group_size < {{ k }}

),

k_anonymity_rechecked as (

    select
        *,
        count(*) over (partition by {{ qis | join(', ') }}) as k_published_group_size
    from k_anonymity_assigned

),

k_anonymity_enforced as (

    select
        {{ row_key }},
        {%- for qi in qis %}
        case when k_anonymity_level < {{ levels | length }}
            and k_published_group_size >= {{ k }} then {{ qi }} end as {{ qi }},
        {%- endfor %}
        k_anonymity_level,
        case
            when k_anonymity_level >= {{ levels | length }}
                or k_published_group_size < {{ k }} then 'suppressed'
            when k_anonymity_level = 0 then 'kept'
            else 'generalized'
        end as k_anonymity_outcome
    from k_anonymity_rechecked

)
{%- endmacro %}
