"""Where the city explorer reads the reporting marts from: Spark, or the
marts' parquet files directly.

Starting a JVM costs 10-40 s on a small machine, far more than reading a
few kilobytes of marts. On the embedded `local` target the marts are
parquet directories under the warehouse, so they are read with pyarrow, as
consistent snapshots (sflux.api.snapshot: the same reader the API uses, so
a mart being rebuilt by dbt is never read half-written). On another target
(the Thrift server's warehouse is not ours to read) the Spark path of
sflux.reporting.data stays. Both return the same Python values (a Spark
`Row.asDict()` and a pyarrow `to_pylist()` row hold the same types for these
columns), so what the explorer prints does not depend on the engine.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from sflux.core.errors import UserError
from sflux.reporting import data

ENGINES = ("auto", "files", "spark")
LOCAL_TARGET = "local"  # the profiles.yml default of SANTEFLUX_TARGET


class Marts(Protocol):
    def tiers(self) -> list[str]: ...

    def matrix(self) -> list[dict[str, Any]]: ...

    def cells(self, city: str) -> list[dict[str, Any]]: ...

    def daily(
        self, city: str, start: date | None, end: date | None, tier: str | None
    ) -> list[dict[str, Any]]: ...

    def date_range(self) -> tuple[date | None, date | None]: ...


class SparkMarts:
    """The marts through a Spark session (sflux.reporting.data)."""

    def __init__(self, spark: Any) -> None:
        data.require_marts(spark)
        self.spark = spark

    def tiers(self) -> list[str]:
        return data.read_tiers(self.spark)

    def matrix(self) -> list[dict[str, Any]]:
        return data.read_matrix(self.spark)

    def cells(self, city: str) -> list[dict[str, Any]]:
        return data.read_cells(self.spark, city)

    def daily(
        self, city: str, start: date | None, end: date | None, tier: str | None
    ) -> list[dict[str, Any]]:
        return data.read_daily(self.spark, city, start, end, tier)

    def date_range(self) -> tuple[date | None, date | None]:
        return data.read_date_range(self.spark)


class FileMarts:
    """The marts read from their parquet directories, one consistent
    snapshot per table, with the filters and orders of sflux.reporting.data."""

    def __init__(self, warehouse_dir: Path) -> None:
        from sflux.api.snapshot import MartUnavailable, SnapshotReader

        reader = SnapshotReader(warehouse_dir / "analytics.db")
        self._rows: dict[str, list[dict[str, Any]]] = {}
        for table in data.MARTS:
            schema, name = table.split(".", 1)
            if schema != "analytics":
                raise ValueError(f"{table}: only analytics marts are read from files")
            if not (reader.analytics_dir / name).is_dir():
                raise UserError(f"{table} does not exist yet: run `make build` (dbt build) first")
            try:
                snapshot = reader.read(name)
            except MartUnavailable as exc:
                raise UserError(str(exc)) from None
            self._rows[table] = _typed_rows(snapshot.table)

    def tiers(self) -> list[str]:
        rows = sorted(self._rows[data.TIERS], key=lambda r: r["tier_rank"])
        return [r["subscription_type"] for r in rows]

    def matrix(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._rows[data.MATRIX]]

    def cells(self, city: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self._rows[data.CELLS] if r["city"] == city]

    def daily(
        self, city: str, start: date | None, end: date | None, tier: str | None
    ) -> list[dict[str, Any]]:
        rows = [
            dict(r)
            for r in self._rows[data.DAILY]
            if r["city"] == city
            and (start is None or r["reading_date"] >= start)
            and (end is None or r["reading_date"] <= end)
            and (tier is None or r["subscription_type"] == tier)
        ]
        # Spark orders strings by their UTF-8 bytes, Python by code points:
        # the same order.
        return sorted(rows, key=lambda r: (r["reading_date"], r["subscription_type"]))

    def date_range(self) -> tuple[date | None, date | None]:
        days = [r["reading_date"] for r in self._rows[data.DAILY] if r["reading_date"] is not None]
        return (min(days), max(days)) if days else (None, None)


def _typed_rows(table: Any) -> list[dict[str, Any]]:
    """Rows as dicts; a date read back from a partition directory name
    (`reading_date=2026-11-01`, inferred as text) is typed as a date again."""
    import pyarrow as pa

    for index, field in enumerate(table.schema):
        if field.name.endswith("_date") and not pa.types.is_date(field.type):
            table = table.set_column(index, field.name, table.column(index).cast(pa.string()).cast(pa.date32()))
    return table.to_pylist()


def engine_for(choice: str) -> str:
    """`files` on the local target, `spark` on any other, unless chosen."""
    if choice not in ENGINES:
        raise UserError(f"unknown engine {choice!r}; engines: {', '.join(ENGINES)}")
    if choice != "auto":
        return choice
    return "files" if os.environ.get("SANTEFLUX_TARGET", LOCAL_TARGET) == LOCAL_TARGET else "spark"


def open_marts(choice: str = "auto") -> Marts:
    if engine_for(choice) == "files":
        from sflux.core.spark import session_conf

        return FileMarts(Path(session_conf()["spark.sql.warehouse.dir"]))
    from sflux.core.spark import get_spark

    return SparkMarts(get_spark())
