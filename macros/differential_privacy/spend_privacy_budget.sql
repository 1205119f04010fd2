{#-
    pre-hook of a differentially private release: record its epsilon in the
    budget ledger (restricted table raw.dp_budget_ledger), or stop the build
    if the release would take the period's total above `dp_total_epsilon`.

    Each run of a DP model is a new release with fresh noise, and releases
    compose: an analyst who averages N releases of the same data cuts the
    noise by √N. So every run spends, and the budget per `dp_budget_period`
    is the only thing that bounds what can be learned about one person.
    The ledger is appended to before the model runs: a release that fails
    afterwards still counts, which errs on the safe side.

    Arguments:
      epsilon: the release's privacy loss.
      sensitivity: Δ after contribution clipping (recorded for audit).
-#}
{% macro spend_privacy_budget(epsilon, sensitivity) %}
    {% if execute %}
        {% set period = var('dp_budget_period') %}
        {% set total = var('dp_total_epsilon') | float %}
        {% set eps = epsilon | float %}
        {% if eps <= 0 %}
            {{ exceptions.raise_compiler_error("DP release " ~ this ~ ": epsilon must be > 0, got " ~ epsilon) }}
        {% endif %}
        {% set ledger = restricted_table('dp_budget_ledger') %}
        {% do run_query('create schema if not exists ' ~ ledger.schema) %}
        {% do run_query(
            'create table if not exists ' ~ ledger ~ ' ('
            ~ 'release_id string, relation string, budget_period string, epsilon double, '
            ~ 'sensitivity double, released_at timestamp, dbt_invocation_id string) using parquet') %}
        {% set spent_sql %}
            select coalesce(sum(epsilon), 0) as spent
            from {{ ledger }}
            where budget_period = '{{ period | replace("'", "") }}'
        {% endset %}
        {% set spent = run_query(spent_sql).columns[0].values()[0] | float %}
        {% if spent + eps > total + 1e-9 %}
            {{ exceptions.raise_compiler_error(
                "Privacy budget exceeded: release " ~ this ~ " needs epsilon " ~ eps
                ~ " but period '" ~ period ~ "' has spent " ~ spent ~ " of dp_total_epsilon " ~ total
                ~ ". Nothing was released; see docs/privacy.md.") }}
        {% endif %}
        {% do run_query(
            "insert into " ~ ledger ~ " select concat('" ~ invocation_id ~ "', ':', '" ~ this
            ~ "'), '" ~ this ~ "', '" ~ period | replace("'", "") ~ "', " ~ eps ~ ", " ~ sensitivity
            ~ ", current_timestamp(), '" ~ invocation_id ~ "'") %}
        {% do log("DP release " ~ this ~ ": epsilon " ~ eps ~ " recorded; period '" ~ period
            ~ "' has spent " ~ (spent + eps) ~ " of " ~ total ~ ".", info=true) %}
    {% endif %}
    select 1 as privacy_budget_checked
{% endmacro %}
