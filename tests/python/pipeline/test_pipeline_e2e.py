"""End to end: generate small data with every kind of fault, load it, run
`dbt build` (models, data tests and unit tests), then check the warehouse
against an independent Python computation of the rules and check that the
key and the raw identifiers went nowhere they should not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dbt_helpers import REPO_ROOT, run_dbt
from reference_pipeline import Reference, compute, pseudonym, read_rows

@pytest.fixture(scope="session")
def reference(landing: Path, consenting_users: set[str]) -> Reference:
    return compute(landing, consenting_users)


def test_build_ran_unit_tests_and_data_tests(built):
    kinds = {r.node.resource_type for r in built.result.results}
    assert {"model", "seed", "test", "unit_test"} <= {str(k) for k in kinds}


def test_data_exercises_every_rule(reference: Reference):
    totals = {k: sum(day.get(k, 0) for day in reference.daily.values()) for k in (
        "dropped_null_heart_rate", "dropped_out_of_range", "dropped_duplicate",
        "dropped_frozen", "dropped_no_subscription", "readings_out")}
    assert all(v > 0 for v in totals.values()), totals
    suppressed = [c for c in reference.cells.values() if c["n_users"] < 5]
    published = [c for c in reference.cells.values() if c["n_users"] >= 5]
    assert suppressed and published


def test_matrix_matches_independent_computation(spark, built, reference: Reference):
    rows = {r["city"]: r.asDict() for r in spark.table("analytics.fct_city_stress_matrix").collect()}
    assert set(rows) == set(reference.matrix)
    for city, expected in reference.matrix.items():
        for tier, value in expected.items():
            actual = rows[city][f"avg_hr_{tier.lower()}"]
            if value is None:
                assert actual is None, (city, tier)
            else:
                assert actual == pytest.approx(value, rel=1e-12), (city, tier)
    assert set(rows[next(iter(rows))]) == {"city", "avg_hr_basic", "avg_hr_premium", "avg_hr_vip"}


def test_cells_match_and_small_cells_expose_nothing(spark, built, reference: Reference):
    cells = {(r["city"], r["subscription_type"]): r.asDict() for r in spark.table("analytics.fct_city_heart_rate").collect()}
    assert set(cells) == set(reference.cells)
    for key, expected in reference.cells.items():
        actual = cells[key]
        if expected["is_suppressed"]:
            assert actual["is_suppressed"] is True
            assert (actual["n_users"], actual["n_readings"], actual["avg_heart_rate"]) == (None, None, None)
        else:
            assert actual["is_suppressed"] is False
            assert (actual["n_users"], actual["n_readings"]) == (expected["n_users"], expected["n_readings"])
            assert actual["avg_heart_rate"] == pytest.approx(expected["avg_heart_rate"], rel=1e-12)


def test_quality_report_matches_independent_computation(spark, built, reference: Reference):
    rows = {str(r["reading_date"]): r.asDict() for r in spark.table("analytics.fct_vitals_quality_daily").collect()}
    assert set(rows) == set(reference.daily)
    for date, expected in reference.daily.items():
        assert rows[date]["is_suppressed"] is expected["is_suppressed"], date
        for column, actual in rows[date].items():
            if column not in ("reading_date", "is_suppressed"):
                assert actual == (None if expected["is_suppressed"] else expected.get(column, 0)), (date, column)


def test_pseudonyms_are_hmac_of_the_raw_ids_with_the_real_key(
        spark, built, landing: Path, pseudonym_key: str, consenting_users: set[str]):
    vitals_ids = {r["user_id"] for r in read_rows(sorted(landing.glob("vitals*.csv")))} & consenting_users
    assert vitals_ids, "some consenting members must have readings"
    stored = {r[0] for r in spark.sql("select distinct user_pseudonym_id from anonymized.stg_wearables__vitals").collect()}
    assert stored == {pseudonym(pseudonym_key, uid) for uid in vitals_ids}
    # Same key, same person, same pseudonym in subscriptions (ephemeral: its
    # compiled query runs here, in the JVM that holds the key).
    sub_rows = [r for r in read_rows([landing / "subscriptions.csv"]) if r["user_id"] in consenting_users]
    subs = {r[0] for r in spark.sql(_compiled("staging/billing/stg_billing__subscriptions.sql")).collect()}
    assert subs == {pseudonym(pseudonym_key, r["user_id"]) for r in sub_rows}
    assert subs & stored, "vitals and subscriptions pseudonyms must join"


def _compiled(model: str) -> str:
    """The compiled query of an ephemeral model (dbt writes it under target/)."""
    return (Path(os.environ["DBT_TARGET_PATH"]) / "compiled" / "santeflux" / "models" / model).read_text()


def test_current_subscription_is_latest_plan(
        spark, built, landing: Path, pseudonym_key: str, consenting_users: set[str]):
    from reference_pipeline import current_subscriptions

    rows = [r for r in read_rows([landing / "subscriptions.csv"]) if r["user_id"] in consenting_users]
    expected = {pseudonym(pseudonym_key, u): t for u, t in current_subscriptions(rows).items()}
    actual = {r[0]: r[1] for r in spark.sql(
        _compiled("staging/billing/stg_billing__subscriptions.sql")).collect()}
    assert actual == expected
    assert not spark.catalog.tableExists("anonymized.stg_billing__subscriptions"), "it must not be stored"


def test_subscription_join_is_broadcast(spark, built):
    query = _compiled("intermediate/subscriptions/int_readings_joined_to_subscriptions.sql")
    plan = "\n".join(r[0] for r in spark.sql(f"explain formatted {query}").collect())
    # The inner joins are the subscription and city joins (the frozen-window
    # filter is an anti join between two large sides and may shuffle).
    assert plan.count("BroadcastHashJoin Inner") == 2
    assert "SortMergeJoin Inner" not in plan and "ShuffledHashJoin Inner" not in plan


def test_no_raw_identifier_outside_raw(spark, built, landing: Path):
    """Independent of the dbt privacy test: every string value in the
    anonymized and analytics zones is checked against the raw identifiers."""
    raw = read_rows(sorted(landing.glob("vitals*.csv")))
    forbidden = {r["user_id"] for r in raw} | {r["full_name"] for r in raw} | {r["device_id"] for r in raw}
    checked = 0
    for schema in ("anonymized", "analytics"):
        for table in spark.catalog.listTables(schema):
            if table.isTemporary:  # a session's temp views, not stored in the zone
                continue
            df = spark.table(f"{schema}.{table.name}")
            for field in df.schema.fields:
                if field.dataType.simpleString() != "string":
                    continue
                values = {r[0] for r in df.select(field.name).distinct().collect()}
                assert not values & forbidden, f"{schema}.{table.name}.{field.name} leaks raw identifiers"
                checked += 1
    assert checked >= 5


def _encodings(secret: str) -> list[bytes]:
    return [secret.encode("utf-8"), secret.encode("utf-16-le"), secret.encode("utf-16-be")]


def _files_containing(roots: list[Path], needles: list[bytes]) -> tuple[list[Path], list[Path]]:
    hits, scanned = [], []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in (".venv", ".git")]
            for name in filenames:
                path = Path(dirpath) / name
                try:
                    data = path.read_bytes()
                except OSError:
                    continue
                scanned.append(path)
                if any(n in data for n in needles):
                    hits.append(path)
    return hits, scanned


def test_key_is_written_nowhere(built, test_root: Path, pseudonym_key: str):
    """After a build with a random key, no file in the repo tree or in the
    test's warehouse, metastore, target/ and logs/ holds the key."""
    run_dbt(["docs", "generate"])
    hits, scanned = _files_containing([REPO_ROOT, test_root], _encodings(pseudonym_key))
    assert hits == [], f"key found in: {hits}"
    names = {p.name for p in scanned}
    text = "\n".join(str(p) for p in scanned)
    # The scan must really cover what could leak.
    assert {"manifest.json", "run_results.json", "dbt.log", "catalog.json"} <= names
    assert "metastore_db" in text and ".parquet" in text and "/compiled/" in text and "/run/" in text


def test_key_scan_detects_a_planted_key(test_root: Path, pseudonym_key: str):
    planted = test_root / "planted" / "leak.txt"
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_text(f"oops {pseudonym_key}\n", encoding="utf-16-le")
    try:
        hits, _ = _files_containing([planted.parent], _encodings(pseudonym_key))
        assert hits == [planted]
    finally:
        planted.unlink()


@pytest.mark.spark  # its dbt subprocess starts a JVM of its own
def test_build_without_key_fails_before_any_model(test_root: Path):
    env = {k: v for k, v in os.environ.items() if k != "DBT_ENV_SECRET_PSEUDONYM_KEY"}
    env["SANTEFLUX_DATA_DIR"] = str(test_root / "no-key-data")
    env["DBT_TARGET_PATH"] = str(test_root / "no-key-target")
    env["DBT_LOG_PATH"] = str(test_root / "no-key-logs")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "build", "--project-dir", str(REPO_ROOT)],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "DBT_ENV_SECRET_PSEUDONYM_KEY is not set" in output
    assert "OK created" not in output
    # dbt creates the (empty) schemas before hooks run; no table may exist.
    warehouse = test_root / "no-key-data" / "warehouse"
    assert [p for p in warehouse.glob("*.db/*")] == []
