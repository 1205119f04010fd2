{#-
    The subscription tiers, in rank order, read from the `subscription_tiers`
    seed at run time, so that adding a tier is a seed change rather than a SQL
    edit. Returns a list of dicts: {name, rank, slug}; `slug` is the lowercase
    name made safe for a column name (VIP -> vip).
    At parse time (execute is false) it returns an empty list; calling it also
    records the model's dependency on the seed. Under var `offline_compile`
    (linting without a warehouse) it returns one placeholder tier, so the
    per-tier SQL is still rendered and linted. Not usable inside dbt unit
    tests, where ref() points at a mocked CTE that run_query cannot read.
-#}
{% macro subscription_tiers() %}
    {% set seed_ref = ref('subscription_tiers') %}
    {% if not execute %}
        {{ return([]) }}
    {% endif %}
    {% if var('offline_compile', false) %}
        {{ return([{'name': 'Offline', 'rank': 1, 'slug': 'offline'}]) }}
    {% endif %}
    {#- The seed's table itself, even under `dbt build --empty`, where ref()
        renders as an empty subquery: the tiers shape the SQL, not the data. -#}
    {% set seed_table = adapter.get_relation(
            database=seed_ref.database,
            schema=seed_ref.schema,
            identifier=seed_ref.identifier) %}
    {% if seed_table is none %}
        {{ exceptions.raise_compiler_error(
            "seed subscription_tiers is not loaded (" ~ seed_ref.schema ~ "." ~ seed_ref.identifier
            ~ "): run `dbt seed` (dbt build does it first)") }}
    {% endif %}
    {% set result = run_query(
        "select subscription_type, tier_rank from " ~ seed_table ~ " order by tier_rank") %}
    {% set tiers = [] %}
    {% for row in result.rows %}
        {% do tiers.append({
            'name': row[0],
            'rank': row[1],
            'slug': modules.re.sub('[^a-z0-9]+', '_', row[0] | lower) | trim('_')
        }) %}
    {% endfor %}
    {{ return(tiers) }}
{% endmacro %}
