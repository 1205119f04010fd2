"""The raw landing contract (README "Raw landing contract").

One place defines, per dataset, which files belong to it, their exact header,
how each field is typed and validated, and the raw table it lands in. The
generator writes files that follow it; the loader accepts any file that does.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from sflux import paths

RAW_SCHEMA = "raw"
QUARANTINE_TABLE = f"{RAW_SCHEMA}.quarantine"
TIMESTAMP_FORMAT = "yyyy-MM-dd HH:mm:ss"  # Spark pattern; UTC
DATE_FORMAT = "yyyy-MM-dd"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "string" | "timestamp" | "date" | "int" | "tier"
    required: bool = True  # False: an empty field loads as NULL


@dataclass(frozen=True)
class Dataset:
    name: str
    file_globs: tuple[str, ...]
    columns: tuple[Column, ...]
    table: str
    partition_by: tuple[tuple[str, str], ...] = field(default=())  # (name, SQL expr)

    @property
    def header(self) -> list[str]:
        return [c.name for c in self.columns]

    def files(self, directory: Path) -> list[Path]:
        found: set[Path] = set()
        for pattern in self.file_globs:
            found.update(p for p in directory.glob(pattern) if p.is_file())
        return sorted(found)


VITALS = Dataset(
    name="vitals",
    file_globs=("vitals.csv", "vitals*.csv"),
    columns=(
        Column("user_id", "string"),
        Column("full_name", "string"),
        Column("city", "string"),
        Column("device_id", "string"),
        Column("reading_ts", "timestamp"),
        Column("heart_rate", "int", required=False),
    ),
    table=f"{RAW_SCHEMA}.vitals",
    partition_by=(("reading_date", "to_date(reading_ts)"),),
)

SUBSCRIPTIONS = Dataset(
    name="subscriptions",
    file_globs=("subscriptions.csv",),
    columns=(
        Column("user_id", "string"),
        Column("subscription_type", "tier"),
        Column("start_date", "date"),
    ),
    table=f"{RAW_SCHEMA}.subscriptions",
)

DATASETS: tuple[Dataset, ...] = (SUBSCRIPTIONS, VITALS)


def subscription_tiers() -> list[str]:
    """Tier names, in rank order, from the dbt seed (the single source)."""
    with paths.tiers_seed().open(encoding="utf-8", newline="") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda r: int(r["tier_rank"]))
    return [row["subscription_type"] for row in rows]
