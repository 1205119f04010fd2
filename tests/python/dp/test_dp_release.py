"""The differentially private release, on the shared warehouse (the
`built` fixture made one release through scripts/release_dp.py). Each test
performs an attack and fails if it works:

- match a DP cell exactly from an exact mart an analyst reads;
- learn from the grid who was active (a date only one member touched);
- raise the budget, change its period or seed the noise with dbt --vars;
- spend or publish with a dbt build;
- release beyond the budget;
- release twice at once so that together the two overspend.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import threading
import time
from collections import defaultdict
from decimal import Decimal

import pyarrow as pa
import pytest

from dbt_helpers import REPO_ROOT, dbt_outcome, run_dbt
from sflux.core.errors import UserError
from sflux.dp import config as dp_config
from sflux.dp import ledger, release
from sflux.privacy.policies import project_var

DP_KEYS = release.CELL_KEYS
SHARED_RELEASE_REASON = "pytest shared warehouse"


def _ledger(spark) -> list[dict]:
    spark.catalog.refreshTable(ledger.LEDGER_TABLE)
    return [r.asDict() for r in spark.sql(
        f"select * from {ledger.LEDGER_TABLE} order by released_at").collect()]


def _published(spark) -> tuple:
    """A fingerprint of the published table: rows, releases, content."""
    spark.catalog.refreshTable(release.PUBLISHED_TABLE)
    return tuple(spark.sql(
        "select count(*), count(distinct release_id), max(release_id),"
        " sum(xxhash64(event_date, event_type, region, noisy_event_count, noisy_revenue_eur))"
        f" from {release.PUBLISHED_TABLE}").first())


def _release_audit(spark) -> list[dict]:
    return [{**r.asDict(), "details": json.loads(r["details"])} for r in spark.sql(
        "select * from raw.privacy_audit_log where operation = :op order by occurred_at",
        args={"op": release.AUDIT_OPERATION}).collect()]


def _spent(spark, period: str) -> float:
    return sum(r["epsilon"] for r in _ledger(spark) if r["budget_period"] == period)


# --- read-only: the shared release ---------------------------------------------

def test_the_release_is_recorded_with_opendps_epsilon_and_audited(spark, built):
    config = dp_config.load()
    summary = spark.sql(
        "select count(*) as cells, count(distinct release_id) as releases, max(release_id) as release_id,"
        " collect_set(struct(epsilon, count_noise_scale, revenue_noise_scale)) as parameters,"
        " min(noisy_event_count) as min_count, min(noisy_revenue_eur) as min_revenue"
        f" from {release.PUBLISHED_TABLE}").first()
    assert summary["releases"] == 1
    release_id = summary["release_id"]
    last = _ledger(spark)[-1]
    assert (last["release_id"], last["relation"], last["budget_period"]) == \
        (release_id, release.PUBLISHED_TABLE, config.period)
    # scale = sensitivity / (epsilon / 2): 200 / 0.25 events, 20 x 500 EUR / 0.25.
    assert last["epsilon"] == pytest.approx(config.epsilon)
    assert [tuple(p) for p in summary["parameters"]] == [(last["epsilon"], 800.0, 40_000.0)]
    assert summary["min_count"] >= 0 and summary["min_revenue"] >= 0
    audited = [a for a in _release_audit(spark) if a["details"]["release_id"] == release_id]
    assert [(a["status"], a["details"]["reason"]) for a in audited] == [("success", SHARED_RELEASE_REASON)]
    assert json.loads(audited[0]["relations_touched"]) == {release.PUBLISHED_TABLE: summary["cells"]}


def test_the_published_grid_is_the_declared_domain_whatever_the_data(spark, built):
    """Attack: a date (or region) only one member touched appears or
    vanishes with them. The cells must be exactly the declared dates x the
    event types x the seed's regions, dates without any event included."""
    config = dp_config.load()
    event_types = project_var("app_event_types")
    regions = {r[0] for r in spark.sql("select distinct region from analytics.city_regions").collect()}
    published = {(r[0], r[1], r[2]) for r in spark.sql(
        f"select {', '.join(DP_KEYS)} from {release.PUBLISHED_TABLE}").collect()}
    assert published == set(itertools.product(config.dates, event_types, regions))
    assert spark.table(release.PUBLISHED_TABLE).count() == len(published)
    event_dates = {r[0] for r in spark.sql("select distinct event_date from anonymized.stg_app__events").collect()}
    silent_dates = set(config.dates) - event_dates
    assert event_dates and silent_dates, "the test data must leave dates of the domain without events"


def test_the_published_noise_has_the_declared_scale(spark, built):
    """End to end: on the cells of dates without any event (exact value 0)
    the published count is max(0, X), X discrete Laplace of scale b = 800:
    P(0) = 1 / (1 + p) = 0.5003 with p = exp(-1/b), and a positive value
    averages 1 / (1 - p) = 800.5 (revenue: b = 4 000 000 cents, 40 000 EUR).
    With ~32 000 cells the tolerances are over 5 standard errors, and a
    scale 10 % off fails."""
    stats = spark.sql(f"""
        select
            count(*) as cells,
            avg(cast(noisy_event_count = 0 as int)) as zero_counts,
            avg(nullif(noisy_event_count, 0)) as mean_positive_count,
            avg(cast(noisy_revenue_eur = 0 as int)) as zero_revenue,
            avg(nullif(noisy_revenue_eur, 0)) as mean_positive_revenue
        from {release.PUBLISHED_TABLE}
        where event_date not in (select distinct event_date from anonymized.stg_app__events)
    """).first()
    assert stats["cells"] > 20_000
    p_count, p_revenue = math.exp(-1 / 800), math.exp(-1 / 4_000_000)
    assert abs(stats["zero_counts"] - 1 / (1 + p_count)) < 0.015
    assert abs(stats["mean_positive_count"] - 1 / (1 - p_count)) < 35
    assert abs(stats["zero_revenue"] - 1 / (1 + p_revenue)) < 0.015
    assert abs(float(stats["mean_positive_revenue"]) - 0.01 / (1 - p_revenue)) < 1_750


def _exact_cells(spark) -> dict[str, dict[tuple, Decimal]]:
    """What the release adds noise to, unclipped and exact: events and
    purchase revenue per (date, event type, region), from the anonymized
    zone, through the same joined events the release reads."""
    from dbt.cli.main import dbtRunner

    compiled = dbtRunner().invoke([
        "compile", "--quiet", "--no-populate-cache", "--project-dir", str(REPO_ROOT), "--inline",
        "select event_date, event_type, region, count(*) as n_events,"
        " coalesce(sum(amount_eur), 0) as revenue_eur"
        " from {{ ref('int_events_joined_to_users') }} group by event_date, event_type, region",
    ])
    assert compiled.success, compiled.exception
    cells: dict[str, dict[tuple, Decimal]] = {"n_events": {}, "revenue_eur": {}}
    for row in spark.sql(compiled.result.results[0].node.compiled_code).collect():
        for measure in cells:
            cells[measure][(row["event_date"], row["event_type"], row["region"])] = Decimal(row[measure])
    return cells


def reproductions(tables: dict[str, tuple[list[str], list[tuple]]],
                  truth: dict[str, dict[tuple, Decimal]]) -> list[str]:
    """The analyst's attack: for every table, every numeric column, summed
    over the DP cell keys the table has (all rows of a group published),
    compared with the exact cells summed the same way. A column that
    equals a measure on every such group (at least one non-zero) gives
    the cells, or their sums, exactly: subtracting it from the release
    reveals the noise."""
    found = []
    for name, (columns, rows) in tables.items():
        keys = [k for k in DP_KEYS if k in columns]
        numeric = [c for c in columns if c not in keys and rows
                   and any(isinstance(r[columns.index(c)], (int, float, Decimal))
                           and not isinstance(r[columns.index(c)], bool) for r in rows)]
        for column, (measure, cells) in itertools.product(numeric, truth.items()):
            sums: dict[tuple, Decimal | None] = defaultdict(Decimal)
            for row in rows:
                group = tuple(row[columns.index(k)] for k in keys)
                value = row[columns.index(column)]
                sums[group] = None if value is None or sums[group] is None else sums[group] + Decimal(value)
            exact: dict[tuple, Decimal] = defaultdict(Decimal)
            for cell, value in cells.items():
                exact[tuple(cell[DP_KEYS.index(k)] for k in keys)] += value
            complete = {g: v for g, v in sums.items() if v is not None and exact.get(g, 0) > 0}
            if complete and all(exact[g] == v for g, v in complete.items()):
                found.append(f"{name}.{column} = {measure} on {len(complete)} group(s) by {keys}")
    return found


def test_no_exact_analytics_table_reproduces_a_dp_cell(spark, built):
    """Attack: sum an exact mart the analyst reads (e.g. event counts over
    device types, revenue over cohorts) to the DP cells, and subtract."""
    truth = _exact_cells(spark)
    assert any(v > 0 for v in truth["n_events"].values()) and any(v > 0 for v in truth["revenue_eur"].values())
    tables = {}
    for table in spark.catalog.listTables("analytics"):
        if table.isTemporary or table.name == release.PUBLISHED_TABLE.split(".")[1]:
            continue
        df = spark.table(f"analytics.{table.name}")
        tables[table.name] = (df.columns, [tuple(r) for r in df.collect()])
    assert "fct_user_cohorts" in tables and "fct_daily_event_metrics" not in tables
    assert reproductions(tables, truth) == []
    # The attack finds the leak when there is one: the exact event mart of
    # the anonymized zone, summed over device types (small cells are NULL).
    metrics = spark.table("anonymized.fct_daily_event_metrics")
    leaked = {"fct_daily_event_metrics": (metrics.columns, [tuple(r) for r in metrics.collect()])}
    assert any("n_events = n_events" in f for f in reproductions(leaked, truth))


def test_no_analytics_model_reads_the_event_stream():
    """Lineage: apart from the DP release's input (raw zone), nothing built
    into analytics depends on the app events, so no exact event measure
    can reach analysts whatever the data."""
    manifest = run_dbt(["parse"]).result
    events = "model.santeflux.stg_app__events"
    children: dict[str, set[str]] = defaultdict(set)
    for node in manifest.nodes.values():
        for parent in getattr(node.depends_on, "nodes", []):
            children[parent].add(node.unique_id)
    downstream, frontier = set(), [events]
    while frontier:
        for child in children[frontier.pop()] - downstream:
            downstream.add(child)
            frontier.append(child)
    in_analytics = sorted(n for n in downstream if n.startswith("model.")
                          and manifest.nodes[n].schema == "analytics")
    assert in_analytics == []
    assert "model.santeflux.int_event_cells_clipped" in downstream


def test_budget_vars_are_refused_before_any_model_runs(spark, built):
    """Attack: raise the budget, move to a fresh period or seed the noise
    from the command line."""
    hostile = {"dp_total_epsilon": 1000, "dp_budget_period": "fresh", "dp_seed": 42}
    before = _published(spark)
    ok, message = dbt_outcome(["run", "--select", "fct_user_cohorts", "--vars", json.dumps(hostile)])
    assert not ok
    assert "Refused --vars dp_total_epsilon, dp_budget_period, dp_seed" in message
    assert _published(spark) == before


# --- these change the ledger, the release's input or the published table -------

@pytest.mark.mutates_warehouse
def test_dbt_builds_spend_nothing_and_publish_nothing(spark, built):
    """Attack: spend budget or publish through dbt. No dbt node can: the
    published table is no model, and the dev selector leaves the release's
    input out (test_dev_loop.py). Built by hand, the input stays empty
    without the release script's settings, and with them (copied from the
    settings file) it spends and publishes nothing; the release script then
    refuses an input it did not build."""
    config = dp_config.load()
    before = (_ledger(spark), _published(spark), len(_release_audit(spark)))

    ok, message = dbt_outcome(["run", "--selector", "release"])
    assert ok, message
    assert spark.table(release.CLIPPED_TABLE).count() == 0
    settings = json.dumps({"dp_release": config.dbt_settings("hand_built")})
    ok, message = dbt_outcome(["run", "--selector", "release", "--vars", settings])
    assert ok, message
    assert spark.table(release.CLIPPED_TABLE).count() == spark.table(release.PUBLISHED_TABLE).count()

    assert (_ledger(spark), _published(spark), len(_release_audit(spark))) == before
    with pytest.raises(UserError, match="another build replaced it"):
        release.read_clipped_cells(spark, config, "not_hand_built", "test")


@pytest.mark.mutates_warehouse
def test_a_release_over_the_budget_is_refused_audited_and_publishes_nothing(spark, built, monkeypatch):
    """Attack: one release too many. The CLI refuses it in one line, before
    building anything, and the ledger and the published table are unchanged."""
    config = dp_config.load()
    exhausted = dataclasses.replace(config, total_epsilon=_spent(spark, config.period) + config.epsilon / 2)
    monkeypatch.setattr(release.dp_config, "load", lambda: exhausted)
    before = (_ledger(spark), _published(spark))
    assert release_cli().main(["--reason", "one too many"], spark=spark) == 1
    assert (_ledger(spark), _published(spark)) == before
    refused = _release_audit(spark)[-1]
    assert refused["status"] == "refused" and refused["details"]["reason"] == "one too many"
    assert "Privacy budget exceeded" in refused["details"]["error"]


def release_cli():
    from script_loader import load_script

    return load_script("release_dp")


def _empty_domain_cells(spark, config: dp_config.DpConfig) -> release.ClippedCells:
    """Every cell of the declared domain with nothing in it: a release's
    input that needs no dbt build (the lock is what is under test)."""
    regions = sorted(r[0] for r in spark.sql("select distinct region from analytics.city_regions").collect())
    keys = list(itertools.product(config.dates, project_var("app_event_types"), regions))
    table = pa.table({name: [key[i] for key in keys] for i, name in enumerate(DP_KEYS)})
    return release.ClippedCells(keys=table, event_counts=[0] * len(keys), revenue_cents=[0] * len(keys),
                                dbt_invocation_id="concurrency-test")


@pytest.mark.mutates_warehouse
def test_concurrent_releases_cannot_jointly_overspend(spark, built, monkeypatch):
    """Attack: two releases at once, each fitting the budget alone but not
    together. Both read the ledger slowly (1 s between the read and the
    write), so without the lock both would fit and both would spend.
    Exactly one must win."""
    config = dp_config.load()
    cells = _empty_domain_cells(spark, config)
    tight = dataclasses.replace(config, total_epsilon=_spent(spark, config.period) + 1.5 * config.epsilon)
    read_ledger = ledger.spent

    def slow_read(*args, **kwargs):
        spent = read_ledger(*args, **kwargs)
        time.sleep(1.0)
        return spent

    monkeypatch.setattr(ledger, "spent", slow_read)
    rows_before = len(_ledger(spark))
    outcomes: dict[str, str] = {}

    def attempt(release_id: str) -> None:
        try:
            release.spend_and_publish(spark, tight, cells, release_id)
            outcomes[release_id] = "released"
        except Exception as exc:  # noqa: BLE001 - every outcome is asserted below
            outcomes[release_id] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"

    threads = [threading.Thread(target=attempt, args=(f"race_{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    spends = _ledger(spark)[rows_before:]
    assert len(spends) == 1, f"{len(spends)} releases spent: {outcomes}"
    winners = [rid for rid, outcome in outcomes.items() if outcome == "released"]
    losers = [outcome for outcome in outcomes.values() if outcome != "released"]
    assert winners == [spends[0]["release_id"]] and len(losers) == 1, outcomes
    assert losers[0].startswith("UserError: Privacy budget exceeded"), losers[0]
    assert {r["release_id"] for r in spark.table(release.PUBLISHED_TABLE).collect()} == set(winners)
