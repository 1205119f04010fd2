"""Reads the reporting marts for the city explorer and the dashboard.

Thin on purpose: every function is one query against a built mart, and
filters go through the DataFrame API rather than SQL text, so a city such as
`L'Aquila` needs no quoting. It reads the `analytics` zone only and runs no
dbt: answering a question must not rebuild the warehouse.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from sflux.core.errors import UserError
from sflux.core.spark import table_exists

MATRIX = "analytics.fct_city_stress_matrix"
CELLS = "analytics.fct_city_heart_rate"
DAILY = "analytics.fct_city_daily_heart_rate"
TIERS = "analytics.subscription_tiers"
MARTS = (MATRIX, CELLS, DAILY, TIERS)
# One tenant's view: only its rows of the tenant marts (models/marts/tenants/),
# never the all-member marts.
TENANT_MARTS = {
    MATRIX: "analytics.fct_tenant_city_stress_matrix",
    CELLS: "analytics.fct_tenant_city_heart_rate",
    DAILY: "analytics.fct_tenant_city_daily_heart_rate",
}
TENANT_COLUMN = "tenant_id"
TENANT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def source_table(mart: str, tenant: str | None) -> str:
    return TENANT_MARTS[mart] if tenant is not None else mart


def _table(spark, mart: str, tenant: str | None):
    """The all-member mart, or exactly `tenant`'s rows of its tenant mart
    (typed equality, tenant column dropped)."""
    from pyspark.sql import functions as F

    if tenant is None:
        return spark.table(mart)
    df = spark.table(TENANT_MARTS[mart])
    return df.where(F.col(TENANT_COLUMN) == F.lit(tenant)).drop(TENANT_COLUMN)


def require_marts(spark, tenant: str | None = None) -> None:
    names = MARTS if tenant is None else (*TENANT_MARTS.values(), TIERS)
    for table in names:
        if not table_exists(spark, table):
            raise UserError(f"{table} does not exist yet: run `make build` (dbt build) first")
    if tenant is not None:
        if not TENANT_ID_RE.fullmatch(tenant):
            raise UserError(f"--tenant {tenant[:80]!r} is not a tenant id (letters, digits, '_', '.', '-'; at most 64)")
        if _table(spark, CELLS, tenant).limit(1).count() == 0:
            raise UserError(f"no tenant {tenant!r} in {TENANT_MARTS[CELLS]}")


def read_tiers(spark) -> list[str]:
    """Tier names in rank order, as the matrix columns are ordered."""
    rows = spark.table(TIERS).orderBy("tier_rank").select("subscription_type").collect()
    return [r["subscription_type"] for r in rows]


def read_matrix(spark, tenant: str | None = None) -> list[dict[str, Any]]:
    return [r.asDict() for r in _table(spark, MATRIX, tenant).collect()]


def read_cells(spark, city: str | None = None, tenant: str | None = None) -> list[dict[str, Any]]:
    from pyspark.sql import functions as F

    df = _table(spark, CELLS, tenant)
    if city is not None:
        df = df.where(F.col("city") == F.lit(city))
    return [r.asDict() for r in df.collect()]


def read_daily(
    spark,
    city: str | None = None,
    start: date | None = None,
    end: date | None = None,
    tier: str | None = None,
    tenant: str | None = None,
) -> list[dict[str, Any]]:
    from pyspark.sql import functions as F

    df = _table(spark, DAILY, tenant)
    if city is not None:
        df = df.where(F.col("city") == F.lit(city))
    if start is not None:
        df = df.where(F.col("reading_date") >= F.lit(start))
    if end is not None:
        df = df.where(F.col("reading_date") <= F.lit(end))
    if tier is not None:
        df = df.where(F.col("subscription_type") == F.lit(tier))
    return [r.asDict() for r in df.orderBy("reading_date", "subscription_type").collect()]


def read_date_range(spark, tenant: str | None = None) -> tuple[date | None, date | None]:
    """First and last reading date in the daily mart (None, None if empty)."""
    from pyspark.sql import functions as F

    row = _table(spark, DAILY, tenant).agg(F.min("reading_date").alias("lo"), F.max("reading_date").alias("hi")).first()
    return row["lo"], row["hi"]
