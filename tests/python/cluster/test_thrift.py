"""The distributed path: the same small landing data, loaded into a fresh data
dir, built by `dbt build` on the `thrift` target against a local standalone
cluster (scripts/spark_cluster.py: master, one worker, Thrift server), gives
the same marts as the embedded build. Stopping the cluster leaves no JVM.

Runs in `make test` (a few minutes: it starts its own JVMs). Skip it with
SANTEFLUX_SKIP_THRIFT=1.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import SCRIPTS
from dbt_helpers import REPO_ROOT
from sflux.cluster import standalone as cluster

pytestmark = pytest.mark.skipif(
    os.environ.get("SANTEFLUX_SKIP_THRIFT") == "1", reason="SANTEFLUX_SKIP_THRIFT=1: thrift test skipped"
)

COMPARED = ["analytics.fct_city_stress_matrix", "analytics.fct_city_heart_rate"]
START_TIMEOUT = 300  # seconds; a busy 2-core machine is slow to start 4 JVMs


def _run(cmd: list[str], env: dict, timeout: float, what: str) -> subprocess.CompletedProcess:
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, cwd=str(REPO_ROOT), capture_output=True, text=True,
                          timeout=timeout, check=False)
    print(f"{what}: {time.monotonic() - started:.1f}s (exit {proc.returncode})")
    assert proc.returncode == 0, f"{what} failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def thrift_cluster(test_root: Path, landing: Path, pseudonym_key: str):
    """Load the shared landing files into a fresh data dir, start a cluster
    on free ports, and stop it (checking nothing is left) at teardown."""
    base = test_root / "thrift"
    data = base / "data"
    env = dict(os.environ)
    env.update({
        "SANTEFLUX_DATA_DIR": str(data),
        "SANTEFLUX_DRIVER_MEMORY": "1g",
        "DBT_ENV_SECRET_PSEUDONYM_KEY": pseudonym_key,
    })
    _run([sys.executable, str(SCRIPTS / "load_raw.py"), "--input", str(landing), "--quiet"],
         env, 600, "loader into the cluster's data dir")

    master_port, thrift_port = cluster.free_port(), cluster.free_port()
    while thrift_port == master_port:
        thrift_port = cluster.free_port()
    cli = [sys.executable, str(SCRIPTS / "spark_cluster.py")]
    common = ["--data-dir", str(data)]
    opts = cluster.Options(data_dir=data.resolve())
    try:
        _run([*cli, "start", *common, "--workers", "1", "--worker-cores", "2", "--worker-memory", "1g",
              "--driver-memory", "1g", "--master-port", str(master_port), "--thrift-port", str(thrift_port),
              "--timeout", str(START_TIMEOUT)], env, START_TIMEOUT + 60, "cluster start")
        state = cluster.read_state(opts)
        assert state and len(state["processes"]) == 3
        status = subprocess.run([*cli, "status", *common], env=env, capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr
        yield {"env": env, "port": thrift_port, "base": base, "state": state}
    finally:
        started = cluster.read_state(opts) or {"processes": []}
        stop = subprocess.run([*cli, "stop", *common], env=env, capture_output=True, text=True, timeout=180)
        recorded = [p["pid"] for p in started["processes"]]
        time.sleep(0.5)
        left = [pid for pid in recorded if cluster.process_alive(pid)] + cluster.tagged_pids(opts.run_dir)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert not left, f"JVMs left after stop: {left}"
        after = subprocess.run([*cli, "status", *common], env=env, capture_output=True, text=True, timeout=60)
        assert after.returncode == 3, after.stdout + after.stderr


@pytest.fixture(scope="module")
def thrift_built(thrift_cluster):
    env = dict(thrift_cluster["env"])
    base = thrift_cluster["base"]
    env.update({
        "SANTEFLUX_TARGET": "thrift",
        "SANTEFLUX_THRIFT_HOST": cluster.HOST,
        "SANTEFLUX_THRIFT_PORT": str(thrift_cluster["port"]),
        "DBT_TARGET_PATH": str(base / "target"),
        "DBT_LOG_PATH": str(base / "logs"),
    })
    _run([str(Path(sys.executable).parent / "dbt"), "build", "--project-dir", str(REPO_ROOT)],
         env, 1800, "dbt build --target thrift")
    return thrift_cluster


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

    conn = hive.connect(host=cluster.HOST, port=thrift_built["port"], auth="NOSASL",
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
