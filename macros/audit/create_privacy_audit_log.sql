{#-
    Create the restricted, append-only audit log (source restricted.privacy_audit_log,
    raw.privacy_audit_log) if it is missing.
    Every writer calls it first, so whichever writes first (a dbt hook or
    scripts/sflux/privacy/audit.py) creates the same layout; the column list must
    match audit._DDL, which tests/python/test_privacy_zones.py checks.

    Arguments: none.
-#}
{% macro create_privacy_audit_log() %}
    {% set audit_log = restricted_table('privacy_audit_log') %}
    {% do run_query('create schema if not exists ' ~ audit_log.schema) %}
    {% do run_query(
        'create table if not exists ' ~ audit_log ~ ' ('
        ~ 'audit_id string, occurred_at timestamp, actor string, operation string, '
        ~ 'subject_pseudonym_id string, relations_touched string, row_count bigint, '
        ~ 'key_version int, git_commit string, status string, details string) using parquet') %}
{% endmacro %}
