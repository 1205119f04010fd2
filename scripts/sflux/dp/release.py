"""A differentially private release of daily event counts and purchase
revenue, the one way anything is published to
analytics.fct_daily_event_counts_dp:

1. dbt builds raw.int_event_cells_clipped (`--selector release`) with the
   DPO's domain and bounds: exact per-cell sums of clipped contributions,
   one row per cell of the public domain, in the restricted zone;
2. under the budget lock, the ledger records the release's epsilon or
   refuses it;
3. OpenDP adds discrete Laplace noise to every cell (sflux.dp.noise);
4. the noisy table, written beside the published one, replaces it by a
   drop and a rename (metastore operations): readers see the old release
   or the new one, never a half-written one (for an instant, no table);
5. the audit log records who released what, and why (or why not).

A `dbt build` never does any of this: the published table is no dbt model.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa
from pyspark.sql import SparkSession

from sflux.core import paths
from sflux.core.errors import UserError
from sflux.dp import config as dp_config
from sflux.dp import ledger, noise
from sflux.privacy import audit

CLIPPED_TABLE = "raw.int_event_cells_clipped"
PUBLISHED_TABLE = "analytics.fct_daily_event_counts_dp"
INCOMING_TABLE = PUBLISHED_TABLE + "__incoming"
AUDIT_OPERATION = "dp_release"
CELL_KEYS = ("event_date", "event_type", "region")
# The clipped table's columns that must equal the DPO's bounds: proof that
# it was built for this release, with these bounds, and not by a hand-run build.
BOUND_COLUMNS = ("max_cells_per_member", "max_events_per_member_cell", "max_amount_cents_per_member_cell")


@dataclass(frozen=True)
class ClippedCells:
    """The release's exact input: one entry per cell of the public domain."""

    keys: pa.Table  # event_date, event_type, region
    event_counts: list[int]
    revenue_cents: list[int]
    dbt_invocation_id: str


@dataclass(frozen=True)
class Release:
    release_id: str
    cells: int
    epsilon: float
    period: str
    spent_after: float
    total_epsilon: float
    count_noise_scale: float
    revenue_noise_scale_eur: float


def run(spark: SparkSession, reason: str, config: dp_config.DpConfig | None = None) -> Release:
    """One release, audited whether it succeeds, is refused (bad settings,
    budget spent, failed input build) or fails."""
    if not reason.strip():
        raise UserError("a release needs a reason (--reason): it is recorded in the audit log")
    release_id = uuid.uuid4().hex
    try:
        settings = config or dp_config.load()
        # Refuse early, before building anything, when the budget is spent;
        # the check that counts is repeated under the lock.
        count_noise, revenue_noise = mechanisms(settings)
        ledger.check(spark, relation=PUBLISHED_TABLE, period=settings.period,
                     epsilon=count_noise.epsilon + revenue_noise.epsilon,
                     total_epsilon=settings.total_epsilon)
        cells = read_clipped_cells(spark, settings, release_id, build_clipped_cells(settings, release_id))
        done = spend_and_publish(spark, settings, cells, release_id)
    except Exception as exc:
        # A refusal (UserError) or a failure midway: audited either way. A
        # failure after the ledger recorded the spend still counts.
        audit.record(spark, AUDIT_OPERATION, status="refused" if isinstance(exc, UserError) else "failed",
                     details={"release_id": release_id, "reason": reason,
                              "error": (str(exc).splitlines() or [type(exc).__name__])[0]})
        raise
    audit.record(spark, AUDIT_OPERATION, status="success", relations={PUBLISHED_TABLE: done.cells},
                 details={"release_id": release_id, "reason": reason, "period": done.period,
                          "epsilon": done.epsilon, "spent_after": done.spent_after,
                          "total_epsilon": done.total_epsilon,
                          "domain": [settings.first_date.isoformat(), settings.last_date.isoformat()],
                          "count_noise_scale": done.count_noise_scale,
                          "revenue_noise_scale_eur": done.revenue_noise_scale_eur,
                          "dbt_invocation_id": cells.dbt_invocation_id})
    return done


def build_clipped_cells(settings: dp_config.DpConfig, release_id: str) -> str:
    """`dbt build --selector release` with the DPO's settings, in this
    process (so in this Spark session); the dbt invocation id."""
    from dbt.cli.main import dbtRunner
    from dbt_common.invocation import get_invocation_id

    os.environ.setdefault("DBT_PROFILES_DIR", str(paths.REPO_ROOT / "profiles"))
    result = dbtRunner().invoke([
        "build", "--selector", "release", "--target", "local", "--project-dir", str(paths.REPO_ROOT),
        "--vars", json.dumps({"dp_release": settings.dbt_settings(release_id)}),
    ])
    if not result.success:
        failed = [r.node.name for r in getattr(result.result, "results", []) or []
                  if str(r.status) not in ("success", "pass")]
        raise UserError(f"the dbt build of the release's input failed ({result.exception or failed});"
                        " nothing was released or spent")
    return get_invocation_id()


def read_clipped_cells(spark: SparkSession, settings: dp_config.DpConfig, release_id: str,
                       dbt_invocation_id: str) -> ClippedCells:
    """The clipped cells this release built, checked against the declared
    domain and bounds: a mismatch means another build replaced the table."""
    spark.catalog.refreshTable(CLIPPED_TABLE)
    table = spark.sql(
        f"select {', '.join(CELL_KEYS)}, clipped_event_count, clipped_revenue_cents, dp_release_id,"
        f" {', '.join(BOUND_COLUMNS)} from {CLIPPED_TABLE}"
        f" order by {', '.join(CELL_KEYS)}").toArrow()
    found_ids = set(table.column("dp_release_id").to_pylist())
    if found_ids != {release_id}:
        raise UserError(f"{CLIPPED_TABLE} holds release(s) {sorted(map(str, found_ids))}, not {release_id}:"
                        " another build replaced it during this release; run the release again")
    expected = settings.dbt_settings(release_id)
    for column in BOUND_COLUMNS:
        if set(table.column(column).to_pylist()) != {expected[column]}:
            raise UserError(f"{CLIPPED_TABLE}.{column} differs from conf/differential_privacy.yml;"
                            " nothing was released")
    _check_domain(table, settings)
    return ClippedCells(
        keys=table.select(list(CELL_KEYS)),
        event_counts=table.column("clipped_event_count").to_pylist(),
        revenue_cents=table.column("clipped_revenue_cents").to_pylist(),
        dbt_invocation_id=dbt_invocation_id,
    )


def _check_domain(table: pa.Table, settings: dp_config.DpConfig) -> None:
    """Every cell of the declared domain, once: the published grid must not
    depend on the data."""
    dates = set(table.column("event_date").to_pylist())
    types = set(table.column("event_type").to_pylist())
    regions = set(table.column("region").to_pylist())
    keys = set(zip(*(table.column(k).to_pylist() for k in CELL_KEYS), strict=True))
    if dates != set(settings.dates) or None in types or None in regions \
            or len(keys) != table.num_rows or table.num_rows != len(dates) * len(types) * len(regions):
        raise UserError(f"{CLIPPED_TABLE} is not the declared domain {settings.first_date} .. "
                        f"{settings.last_date} x event types x regions, each cell once; nothing was released")


def mechanisms(settings: dp_config.DpConfig) -> tuple[noise.LaplaceMechanism, noise.LaplaceMechanism]:
    """The count and the revenue mechanisms, each with half the epsilon."""
    return (noise.discrete_laplace(settings.count_sensitivity, settings.epsilon / 2),
            noise.discrete_laplace(settings.revenue_sensitivity_cents, settings.epsilon / 2))


def spend_and_publish(spark: SparkSession, settings: dp_config.DpConfig, cells: ClippedCells,
                      release_id: str) -> Release:
    """Spend, draw the noise and publish, under the budget lock."""
    count_noise, revenue_noise = mechanisms(settings)
    epsilon = count_noise.epsilon + revenue_noise.epsilon
    with ledger.locked():
        spent_after = ledger.spend(
            spark, release_id=release_id, relation=PUBLISHED_TABLE, period=settings.period,
            epsilon=epsilon, sensitivity=settings.count_sensitivity,
            total_epsilon=settings.total_epsilon, dbt_invocation_id=cells.dbt_invocation_id)
        # Clamping at zero and the cents-to-euros division are
        # post-processing: they cannot weaken the guarantee.
        counts = [max(0, v) for v in count_noise(cells.event_counts)]
        cents = [max(0, v) for v in revenue_noise(cells.revenue_cents)]
        published = _published_table(cells.keys, counts, cents, release_id, epsilon,
                                     count_noise.scale, revenue_noise.scale / 100)
        _replace_published(spark, published)
    return Release(release_id=release_id, cells=published.num_rows, epsilon=epsilon,
                   period=settings.period, spent_after=spent_after,
                   total_epsilon=settings.total_epsilon, count_noise_scale=count_noise.scale,
                   revenue_noise_scale_eur=revenue_noise.scale / 100)


def _published_table(keys: pa.Table, counts: list[int], cents: list[int], release_id: str,
                     epsilon: float, count_scale: float, revenue_scale_eur: float) -> pa.Table:
    rows = keys.num_rows
    released_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    columns = {
        "noisy_event_count": pa.array(counts, pa.int64()),
        "noisy_revenue_eur": pa.array([Decimal(c).scaleb(-2) for c in cents], pa.decimal128(14, 2)),
        "epsilon": pa.array([epsilon] * rows, pa.float64()),
        "count_noise_scale": pa.array([count_scale] * rows, pa.float64()),
        "revenue_noise_scale": pa.array([revenue_scale_eur] * rows, pa.float64()),
        "release_id": pa.array([release_id] * rows, pa.string()),
        "released_at": pa.array([released_at] * rows, pa.timestamp("us")),
    }
    for name, values in columns.items():
        keys = keys.append_column(name, values)
    return keys


def _replace_published(spark: SparkSession, published: pa.Table) -> None:
    """Write the release beside the published table, then swap it in by a
    drop and a rename, metastore operations: no reader sees a partial
    release (between the two, for an instant, there is no table)."""
    spark.sql(f"drop table if exists {INCOMING_TABLE}")
    spark.createDataFrame(published).write.format("parquet").saveAsTable(INCOMING_TABLE)
    spark.sql(f"drop table if exists {PUBLISHED_TABLE}")
    spark.sql(f"alter table {INCOMING_TABLE} rename to {PUBLISHED_TABLE}")
