{#-
    on-run-start guard: stop any invocation that tries to set the privacy
    budget from the command line. The budget, its period and the release's
    epsilon are the DPO's, in conf/differential_privacy.yml, which only
    scripts/release_dp.py reads; no dbt var sets them, and nothing seeds the
    noise. The project declares none of these vars, so a value can only come
    from --vars: it is refused rather than silently ignored, so nobody
    believes they changed the budget.
-#}
{% macro refuse_dp_budget_vars() %}
    {% set budget_vars = ['dp_total_epsilon', 'dp_budget_period', 'dp_seed', 'dp_daily_events_epsilon',
        'dp_max_cells_per_user', 'dp_max_events_per_user_cell', 'dp_max_amount_eur_per_user_cell'] %}
    {% set passed = [] %}
    {% for name in budget_vars if var(name, none) is not none %}
        {% do passed.append(name) %}
    {% endfor %}
    {% if passed %}
        {{ exceptions.raise_compiler_error(
            "Refused --vars " ~ passed | join(', ') ~ ": the privacy budget, its period, the release's"
            ~ " epsilon and bounds are set by the DPO in conf/differential_privacy.yml, and the noise"
            ~ " has no seed; see docs/privacy.md.") }}
    {% endif %}
    select 1 as dp_budget_vars_refused
{% endmacro %}
