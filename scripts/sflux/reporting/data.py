"""Reads the reporting marts for the city explorer and the dashboard.

Thin on purpose: every function is one query against a built mart, and
filters go through the DataFrame API rather than SQL text, so a city such as
`L'Aquila` needs no quoting. It reads the `analytics` zone only and runs no
dbt: answering a question must not rebuild the warehouse.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sflux.core.errors import UserError
from sflux.core.spark import table_exists

MATRIX = "analytics.fct_city_stress_matrix"
CELLS = "analytics.fct_city_heart_rate"
DAILY = "analytics.fct_city_daily_heart_rate"
TIERS = "analytics.subscription_tiers"
MARTS = (MATRIX, CELLS, DAILY, TIERS)


def require_marts(spark) -> None:
    for table in MARTS:
        if not table_exists(spark, table):
            raise UserError(f"{table} does not exist yet: run `make build` (dbt build) first")


def read_tiers(spark) -> list[str]:
    """Tier names in rank order, as the matrix columns are ordered."""
    rows = spark.table(TIERS).orderBy("tier_rank").select("subscription_type").collect()
    return [r["subscription_type"] for r in rows]


def read_matrix(spark) -> list[dict[str, Any]]:
    return [r.asDict() for r in spark.table(MATRIX).collect()]


def read_cells(spark, city: str | None = None) -> list[dict[str, Any]]:
    from pyspark.sql import functions as F

    df = spark.table(CELLS)
    if city is not None:
        df = df.where(F.col("city") == F.lit(city))
    return [r.asDict() for r in df.collect()]


def read_daily(
    spark,
    city: str | None = None,
    start: date | None = None,
    end: date | None = None,
    tier: str | None = None,
) -> list[dict[str, Any]]:
    from pyspark.sql import functions as F

    df = spark.table(DAILY)
    if city is not None:
        df = df.where(F.col("city") == F.lit(city))
    if start is not None:
        df = df.where(F.col("reading_date") >= F.lit(start))
    if end is not None:
        df = df.where(F.col("reading_date") <= F.lit(end))
    if tier is not None:
        df = df.where(F.col("subscription_type") == F.lit(tier))
    return [r.asDict() for r in df.orderBy("reading_date", "subscription_type").collect()]


def read_date_range(spark) -> tuple[date | None, date | None]:
    """First and last reading date in the daily mart (None, None if empty)."""
    from pyspark.sql import functions as F

    row = spark.table(DAILY).agg(F.min("reading_date").alias("lo"), F.max("reading_date").alias("hi")).first()
    return row["lo"], row["hi"]
