{#-
    The subscription tiers, in rank order, read from the `subscription_tiers`
    seed at run time, so that adding a tier is a seed change rather than a SQL
    edit. Returns a list of dicts: {name, rank, slug}; `slug` is the lowercase
    name made safe for a column name (VIP -> vip).
    At parse time (execute is false) it returns an empty list.

    The seed is located through the graph rather than ref(): inside a dbt unit
    test ref() points at a mocked CTE, which run_query cannot read. Models that
    call this declare the dependency with `-- depends_on: {{ ref('subscription_tiers') }}`.
-#}
{% macro subscription_tiers() %}
    {% if not execute %}
        {{ return([]) }}
    {% endif %}
    {% set seed_node = graph.nodes['seed.' ~ project_name ~ '.subscription_tiers'] %}
    {% set seed_relation = adapter.get_relation(
        database=seed_node.database, schema=seed_node.schema, identifier=seed_node.alias) %}
    {% if seed_relation is none %}
        {{ exceptions.raise_compiler_error(
            "seed subscription_tiers is not loaded in schema " ~ seed_node.schema
            ~ ": run `dbt seed` (dbt build does it first)") }}
    {% endif %}
    {% set result = run_query(
        "select subscription_type, tier_rank from " ~ seed_relation ~ " order by tier_rank") %}
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
