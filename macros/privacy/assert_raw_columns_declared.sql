{#-
    on-run-start guard: stop a run or build, before any model, when a raw
    table governed by privacy policies has a column that its source YAML does
    not declare, or lacks one that it declares.

    apply_privacy_policies selects only declared columns, so an undeclared
    column could never reach the anonymized zone; but silently ignoring new
    data is no better than leaking it: someone must decide its treatment.
    A source table is governed when any of its columns declares a
    `treatment`. Tables not loaded yet are skipped: the models that read
    them fail on their own, and a seed-only build needs none of them.
-#}
{% macro assert_raw_columns_declared() %}
    {% if execute and flags.WHICH in ('run', 'build') %}
        {% set problems = [] %}
        {% for node in graph.sources.values() %}
            {% set declared = [] %}
            {% for column_name, column_node in node.columns.items() %}
                {% if privacy_policy_of(column_node).treatment is not none %}
                    {% do declared.append(column_name) %}
                {% endif %}
            {% endfor %}
            {% set relation = adapter.get_relation(
                database=none, schema=node.schema, identifier=node.identifier) if declared else none %}
            {% if relation is not none %}
                {% set actual = adapter.get_columns_in_relation(relation) | map(attribute='name') | list %}
                {% set label = node.source_name ~ '.' ~ node.name ~ '.' %}
                {% for column_name in actual if column_name not in node.columns %}
                    {% do problems.append(label ~ column_name ~ ' (no declared privacy policy)') %}
                {% endfor %}
                {% for column_name in declared if column_name not in actual %}
                    {% do problems.append(label ~ column_name ~ ' (declared, missing from ' ~ relation ~ ')') %}
                {% endfor %}
            {% endif %}
        {% endfor %}
        {% if problems %}
            {{ exceptions.raise_compiler_error(
                "Raw columns out of step with their source YAML: " ~ problems | join(', ')
                ~ ". Declare `meta: {pii: ..., treatment: ...}` for each new column"
                ~ " (scripts/detect_pii.py proposes one); undeclared columns never reach the anonymized zone.") }}
        {% endif %}
    {% endif %}
    select 1 as raw_columns_checked
{% endmacro %}
