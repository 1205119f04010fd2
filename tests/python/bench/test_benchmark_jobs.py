"""The benchmark's hand-written jobs (scripts/sflux/bench/jobs.py) compute the
same City Stress Matrix as the dbt build and as the independent reference,
on the small shared test data, so benchmark.py races equivalent work."""

from __future__ import annotations

import math

import pytest

import reference_pipeline as reference
from sflux.bench import jobs as bench_jobs

TOL = 1e-9


def _normalise(rows) -> dict[str, dict[str, float | None]]:
    cols = [c for _, c in bench_jobs.tier_columns()]
    return {r["city"]: {c: (None if r[c] is None else float(r[c])) for c in cols} for r in rows}


def _reference_matrix(landing, consenting_users) -> dict[str, dict[str, float | None]]:
    ref = reference.compute(landing, consenting_users)
    return {city: {col: row.get(tier) for tier, col in bench_jobs.tier_columns()}
            for city, row in ref.matrix.items()}


def _assert_same(expected, actual) -> None:
    assert sorted(expected) == sorted(actual)
    for city, row in expected.items():
        for col, want in row.items():
            got = actual[city][col]
            if want is None or got is None:
                assert want is None and got is None, (city, col, want, got)
            else:
                assert math.isclose(want, got, rel_tol=TOL, abs_tol=TOL), (city, col, want, got)


@pytest.fixture(scope="module")
def dbt_matrix(spark, built):
    return _normalise(row.asDict() for row in spark.table("analytics.fct_city_stress_matrix").collect())


def test_dataframe_job_matches_dbt_and_reference(spark, built, landing, dbt_matrix, tmp_path,
                                                 consenting_users):
    matrix = _normalise(bench_jobs.notebook_job(spark, str(tmp_path), use_python_udfs=False))
    # The data must exercise suppression and real values, or the check is weak.
    values = [v for row in dbt_matrix.values() for v in row.values()]
    assert any(v is None for v in values) and any(v is not None for v in values)
    _assert_same(dbt_matrix, matrix)
    _assert_same(_reference_matrix(landing, consenting_users), matrix)


def test_landing_csv_job_matches_dbt_and_reference(spark, built, landing, dbt_matrix, tmp_path,
                                                   consenting_users):
    """(e) reads the landing files, not the raw zone the loader wrote: same
    matrix, and the same members let in as the loaded consent rule lets in."""
    from sflux.bench.jobs import _landing_inputs

    matrix = _normalise(bench_jobs.notebook_job(spark, str(tmp_path), landing=landing))
    _assert_same(dbt_matrix, matrix)
    _assert_same(_reference_matrix(landing, consenting_users), matrix)
    _, _, consenting = _landing_inputs(spark, landing)
    assert {r.user_id for r in consenting.collect()} == consenting_users


def test_sql_lower_bound_matches_dbt_and_reference(spark, built, landing, dbt_matrix,
                                                  consenting_users):
    matrix = _normalise(bench_jobs.sql_job(spark))
    _assert_same(dbt_matrix, matrix)
    _assert_same(_reference_matrix(landing, consenting_users), matrix)


def test_python_functions_of_variant_c_match_the_native_ones(spark, pseudonym_key):
    """Variant (c) only swaps hashing and masking for Python functions: they
    must give the native results (checked on a few rows, not the whole job)."""
    from pyspark.sql import functions as F

    names = ["Jean Dupont", "Dupont, Jean", "  Zoë   O'Brien-Kraków ", "X", ",", None]
    frame = spark.createDataFrame([(n, f"user_{i:04d}") for i, n in enumerate(names)],
                                  "full_name string, user_id string")
    native = frame.select(
        bench_jobs._mask_name_native("full_name").alias("masked"),
        bench_jobs._hmac_native("user_id").alias("hashed"),
    ).collect()
    for name, row, i in zip(names, native, range(len(names))):
        assert bench_jobs._python_mask(name) == row["masked"], name
        user = f"user_{i:04d}"
        assert bench_jobs._python_hmac(user) == row["hashed"] == reference.pseudonym(pseudonym_key, user)
    # The wrapped (Spark) versions run end to end on a tiny frame.
    hash_col, mask_col = bench_jobs._anti_pattern_python_udfs()
    wrapped = frame.select(mask_col(F.col("full_name")).alias("masked"),
                           hash_col(F.col("user_id")).alias("hashed")).collect()
    assert [tuple(r) for r in wrapped] == [tuple(r) for r in native]


def test_consent_rule_holds_members_named_by_rejected_or_future_lines(spark):
    """The bench jobs' consent rule fails closed like base_app__analytics_consent."""
    import datetime as dt

    spark.createDataFrame([("u1", True), ("u2", True), ("u3", True), ("u4", False), ("u5", True)],
                          "user_id string, consent_analytics boolean").createOrReplaceTempView("t_profiles")
    now = dt.datetime.now()
    spark.createDataFrame(
        [("u3", "analytics", "grant", now + dt.timedelta(days=1)),
         ("u4", "analytics", "grant", now - dt.timedelta(days=1)),
         ("u5", "marketing", "withdraw", now - dt.timedelta(days=1))],
        "user_id string, consent_type string, action string, event_ts timestamp",
    ).createOrReplaceTempView("t_events")
    spark.createDataFrame([("u2,analytics,WITHDRAW,2026-11-01 10:00:00",), ("no member here",)],
                          "raw_line string").createOrReplaceTempView("t_rejected")
    rows = spark.sql(bench_jobs.consenting_users_sql("t_profiles", "t_events", "t_rejected")).collect()
    assert {r.user_id for r in rows} == {"u1", "u4", "u5"}


def test_one_small_cell_suppresses_the_smallest_published_one_too(spark):
    tiers = [t for t, _ in bench_jobs.tier_columns()]
    k = bench_jobs.rules()["min_cell_users"]
    cells = [("Lyon", tiers[0], k - 1, 50, 70.0), ("Lyon", tiers[1], k + 3, 90, 71.0),
             ("Nice", tiers[0], k + 1, 80, 72.0), ("Nice", tiers[1], k + 1, 99, 73.0)]
    spark.createDataFrame(cells, "city string, subscription_type string, n_users long, "
                                 "n_readings long, avg_hr double").createOrReplaceTempView("t_cells")
    got = _normalise(r.asDict() for r in spark.sql("with " + bench_jobs.matrix_from_cells_sql("t_cells")).collect())
    first, second = (c for _, c in bench_jobs.tier_columns()[:2])
    # Lyon/tier 0 is small; Nice/tier 0 (fewest users, then fewest readings) goes with it.
    assert got["Lyon"][first] is None and got["Nice"][first] is None
    assert got["Lyon"][second] == 71.0 and got["Nice"][second] == 73.0
