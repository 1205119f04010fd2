"""The distributed path: the same small landing data, loaded into a fresh data
dir, built by `dbt build` on the `thrift` target against a local standalone
cluster (scripts/spark_cluster.py: master, one worker, Thrift server), gives
the same marts as the embedded build. Stopping the cluster leaves no JVM.

The pipeline itself runs in the background from the start of the session
(tests/python/thrift_pipeline.py); these tests run after every other read-only test and
before the tests that change the shared warehouse (conftest orders them).
Skip them with SANTEFLUX_SKIP_THRIFT=1.
"""

from __future__ import annotations

import math
import os
import subprocess
from datetime import date, datetime
from decimal import Decimal

import pytest

from sflux.cluster import standalone as cluster

pytestmark = pytest.mark.skipif(
    os.environ.get("SANTEFLUX_SKIP_THRIFT") == "1", reason="SANTEFLUX_SKIP_THRIFT=1: thrift test skipped"
)

COMPARED = ["analytics.fct_city_stress_matrix", "analytics.fct_city_heart_rate"]


@pytest.fixture(scope="module")
def thrift_built(thrift_pipeline):
    """The background pipeline (conftest, tests/python/thrift_pipeline.py), finished:
    loaded, cluster started (three processes, `status` answering), built."""
    if thrift_pipeline is None:
        pytest.fail("the Thrift pipeline was not started for this session")
    pipeline = thrift_pipeline.wait()
    assert pipeline.state and len(pipeline.state["processes"]) == 3, pipeline.state
    return pipeline


def _norm(value):
    if isinstance(value, (date, datetime)):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _same(a, b) -> bool:
    a, b = _norm(a), _norm(b)
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12)
    return a == b


@pytest.mark.parametrize("table", COMPARED)
def test_thrift_build_equals_embedded_build(thrift_built, spark, built, table):
    embedded = spark.table(table)
    columns = embedded.columns
    expected = sorted((tuple(_norm(v) for v in row) for row in embedded.collect()), key=repr)

    from pyhive import hive

    conn = hive.connect(host=cluster.HOST, port=thrift_built.port, auth="NOSASL",
                        username=os.environ.get("USER", "santeflux"))
    try:
        cur = conn.cursor()
        cur.execute(f"select {', '.join(f'`{c}`' for c in columns)} from {table}")
        actual = sorted((tuple(_norm(v) for v in row) for row in cur.fetchall()), key=repr)
    finally:
        conn.close()

    assert expected, f"{table} is empty in the embedded build"
    assert len(actual) == len(expected), (table, len(actual), len(expected))
    for got, want in zip(actual, expected):
        assert all(_same(g, w) for g, w in zip(got, want)), (table, columns, got, want)


def test_stopping_the_cluster_leaves_no_jvm(thrift_built):
    stop, left = thrift_built.stop()
    assert stop is not None and stop.returncode == 0, stop and (stop.stdout + stop.stderr)
    assert not left, f"JVMs left after stop: {left}"
    after = subprocess.run([*thrift_built.cli, "status", *thrift_built.common], env=thrift_built.env,
                           capture_output=True, text=True, timeout=60)
    assert after.returncode == 3, after.stdout + after.stderr
