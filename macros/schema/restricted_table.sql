{#-
    The relation of an operational table of the restricted zone: a table that
    hooks and scripts write (audit log, key registry, DP ledger, erasure
    register) and no dbt node builds. Each is declared once as a source of
    `restricted` (models/restricted/_restricted__sources.yml), so its schema
    and name come from there, not from a literal in every macro, and the
    docs show it.

    It is rebuilt as a plain relation because these tables are DDL and DML
    targets: a source() relation renders as a subquery under `--empty`.

    Arguments:
      table_name: the table's name in the `restricted` source.
-#}
{% macro restricted_table(table_name) -%}
    {%- set declared = source('restricted', table_name) -%}
    {{ return(api.Relation.create(schema=declared.schema, identifier=declared.identifier, type='table')) }}
{%- endmacro %}
