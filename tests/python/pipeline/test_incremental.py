"""Incremental builds: after a new day and a late-arriving file land, an
incremental run rebuilds only the affected reading dates, and its result
equals a full refresh, table for table."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import GENERATOR_ARGS, SCRIPTS, current_consent
from dbt_helpers import run_dbt

pytestmark = pytest.mark.mutates_warehouse

COMPARED = [
    "anonymized.stg_wearables__vitals",
    "anonymized.int_member_day_readings_counted",
    "anonymized.int_vitals_quality_counted",
    "analytics.fct_city_heart_rate",
    "analytics.fct_city_stress_matrix",
    "analytics.fct_vitals_quality_daily",
    "analytics.fct_city_daily_heart_rate",
]


# The compared tables and everything upstream of them: the events, users and
# release branches of the graph play no part here, so they are not rebuilt.
SELECTION = ["--select", *(f"+{table.split('.')[1]}" for table in COMPARED)]


def _snapshot(spark) -> dict[str, list[tuple]]:
    def order(row: tuple) -> tuple:
        return tuple((value is None, str(value)) for value in row)

    return {table: sorted((tuple(r) for r in spark.table(table).collect()), key=order) for table in COMPARED}


def _partition_mtimes(test_root: Path, table_dir: str, date: str) -> dict[str, float]:
    part = test_root / "data" / "warehouse" / table_dir / f"reading_date={date}"
    return {p.name: p.stat().st_mtime_ns for p in part.iterdir()}


def _write_late_file(landing: Path, out: Path, day: str, members: set[str]) -> int:
    """Re-land a few day-one readings of `members` 30 seconds later, as a
    separate file that arrives after the first build."""
    with (landing / "vitals.csv").open(encoding="utf-8", newline="") as source:
        rows = [r for r in csv.DictReader(source)
                if r["reading_ts"].startswith(day) and r["user_id"] in members][:50]
    with (out / "vitals_late.csv").open("w", encoding="utf-8", newline="") as target:
        writer = csv.DictWriter(target, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "reading_ts": row["reading_ts"][:17] + "30"})
    return len(rows)


def test_incremental_run_equals_full_refresh(spark, built, landing: Path, test_root: Path):
    from sflux.ingest.loader import load_raw

    # Settle first: a test that ran before may have reloaded raw files (new
    # landing times on every date) without building.
    assert run_dbt(["run", *SELECTION]).success
    extra = test_root / "landing-next-day"
    args = [a for a in GENERATOR_ARGS if a not in ("--quiet",)]
    days_at = args.index("--days")
    args[days_at + 1] = "1"
    subprocess.run(
        [sys.executable, str(SCRIPTS / "generate_data.py"), "--out", str(extra), *args,
         "--start-date", "2026-11-03", "--split", "day", "--quiet"],
        check=True,
    )
    # Members who consent now and were not erased by an earlier test, so
    # that the late rows reach staging.
    assert _write_late_file(landing, extra, "2026-11-01", current_consent(spark)) == 50
    untouched_before = _partition_mtimes(test_root, "anonymized.db/stg_wearables__vitals", "2026-11-02")

    load_raw(spark, extra)
    incremental = run_dbt(["run", *SELECTION, "--vars", "{vitals_lookback_days: 0}"])
    assert incremental.success
    after_incremental = _snapshot(spark)

    # Only the new day and the day with late rows were rebuilt.
    assert _partition_mtimes(test_root, "anonymized.db/stg_wearables__vitals", "2026-11-02") == untouched_before
    dates = {str(r[0]) for r in spark.sql("select distinct reading_date from anonymized.stg_wearables__vitals").collect()}
    assert dates == {"2026-11-01", "2026-11-02", "2026-11-03"}

    full = run_dbt(["run", *SELECTION, "--full-refresh"])
    assert full.success
    assert _snapshot(spark) == after_incremental
