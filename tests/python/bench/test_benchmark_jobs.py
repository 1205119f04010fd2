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
