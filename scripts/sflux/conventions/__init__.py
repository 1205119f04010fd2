"""The project's own conventions, checked from dbt's manifest (no Spark):
`make check-dbt` (scripts/check_dbt_project.py)."""
