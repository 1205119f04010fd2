"""The privacy-budget ledger, raw.dp_budget_ledger: one row per release.

Releases compose: an analyst who averages N releases of the same data cuts
the noise by √N. So every release spends its epsilon, and the period's
total is the only bound on what can be learned about one person.

Checking the budget and recording a spend is one critical section under an
exclusive OS lock (flock) on a file next to the warehouse: without it, two
releases could both read the same total, both fit, and together overspend.
The caller holds the lock from the check until its release is published.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from pyspark.sql import SparkSession

from sflux.core import paths
from sflux.core.errors import UserError

LEDGER_TABLE = "raw.dp_budget_ledger"

_DDL = f"""
create table if not exists {LEDGER_TABLE} (
    release_id string,
    relation string,
    budget_period string,
    epsilon double,
    sensitivity double,
    released_at timestamp,
    dbt_invocation_id string
) using parquet
"""


def lock_file() -> Path:
    """One lock per warehouse: every release that writes this ledger takes it."""
    return paths.data_dir() / "locks" / "dp_budget_ledger.lock"


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """Hold the budget lock (blocking until any other release lets go)."""
    path = lock_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def ensure_table(spark: SparkSession) -> None:
    spark.sql("create schema if not exists raw")
    spark.sql(_DDL)


def spent(spark: SparkSession, period: str) -> float:
    """Epsilon spent in `period` so far. Reads the files afresh: another
    process may have appended since this session cached the table."""
    ensure_table(spark)
    spark.catalog.refreshTable(LEDGER_TABLE)
    row = spark.sql(
        f"select count_if(not (epsilon > 0)) as bad_rows, coalesce(sum(epsilon), 0) as spent"
        f" from {LEDGER_TABLE} where budget_period = :period", args={"period": period}).first()
    if row["bad_rows"]:
        raise UserError(f"{LEDGER_TABLE} holds {row['bad_rows']} row(s) of period {period!r} whose"
                        " epsilon is not > 0: someone edited the ledger; no release until the DPO restores it")
    return float(row["spent"])


def check(spark: SparkSession, *, relation: str, period: str, epsilon: float, total_epsilon: float) -> float:
    """The period's spend so far, or a UserError if `epsilon` more would
    take it past `total_epsilon`. Only authoritative under `locked()`."""
    before = spent(spark, period)
    if before + epsilon > total_epsilon + 1e-9:
        raise UserError(
            f"Privacy budget exceeded: release {relation} needs epsilon {epsilon:g} but period"
            f" {period!r} has spent {before:g} of total_epsilon {total_epsilon:g}."
            " Nothing was released; see docs/privacy.md.")
    return before


def spend(spark: SparkSession, *, release_id: str, relation: str, period: str, epsilon: float,
          sensitivity: float, total_epsilon: float, dbt_invocation_id: str) -> float:
    """Record the release's epsilon, or refuse it if it would take the
    period past `total_epsilon`; the period's spend after it. Call it while
    holding `locked()`."""
    before = check(spark, relation=relation, period=period, epsilon=epsilon, total_epsilon=total_epsilon)
    spark.sql(
        f"insert into {LEDGER_TABLE} select :release_id, :relation, :period, :epsilon,"
        " :sensitivity, current_timestamp(), :invocation",
        args={"release_id": release_id, "relation": relation, "period": period,
              "epsilon": float(epsilon), "sensitivity": float(sensitivity),
              "invocation": dbt_invocation_id})
    return before + epsilon
