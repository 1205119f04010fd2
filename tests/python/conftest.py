"""Shared pytest fixtures.

One Spark session serves the whole test run (a JVM start costs ~10 s). It is
created here with the project's confs (profiles.yml, target `local`), inside a
throwaway data dir, and dbt reuses it when tests invoke dbt in-process.

The pseudonymization key must be in the environment *before* the JVM starts,
because Spark reads it from its own process environment: it is set at import.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "scripts"

TEST_ROOT = Path(tempfile.mkdtemp(prefix="santeflux-pytest-"))
# A fresh random key per run: the key-leak scan looks for exactly this value.
TEST_KEY = secrets.token_hex(32)

os.environ["SANTEFLUX_HOME"] = str(REPO_ROOT)
os.environ["SANTEFLUX_DATA_DIR"] = str(TEST_ROOT / "data")
os.environ["SANTEFLUX_SPARK_CORES"] = os.environ.get("SANTEFLUX_SPARK_CORES", "2")
os.environ["DBT_ENV_SECRET_PSEUDONYM_KEY"] = TEST_KEY
os.environ["DBT_PROFILES_DIR"] = str(REPO_ROOT / "profiles")
os.environ["DBT_TARGET_PATH"] = str(TEST_ROOT / "target")
os.environ["DBT_LOG_PATH"] = str(TEST_ROOT / "logs")
os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"


@pytest.fixture(scope="session")
def test_root() -> Path:
    return TEST_ROOT


@pytest.fixture(scope="session")
def pseudonym_key() -> str:
    return TEST_KEY


@pytest.fixture(scope="session")
def spark():
    from sflux.core.spark import get_spark

    session = get_spark()
    yield session
    session.stop()


@pytest.fixture(scope="session", autouse=True)
def _remove_test_root():
    yield
    if not os.environ.get("SANTEFLUX_KEEP_TEST_DIR"):
        shutil.rmtree(TEST_ROOT, ignore_errors=True)


# Small data with every kind of fault, built once per pytest session and shared
# by the end-to-end, report and dashboard tests.
GENERATOR_ARGS = [
    "--users", "60", "--days", "2", "--cities", "4", "--seed", "11",
    "--frozen-rate", "0.3", "--null-rate", "0.01", "--out-of-range-rate", "0.01",
    "--duplicate-rate", "0.01", "--quiet",
]


@pytest.fixture(scope="session")
def landing(test_root: Path) -> Path:
    out = test_root / "landing-e2e"
    subprocess.run(
        [sys.executable, str(SCRIPTS / "generate_data.py"), "--out", str(out), *GENERATOR_ARGS],
        check=True,
    )
    return out


@pytest.fixture(scope="session")
def built(spark, landing: Path):
    """Generated data loaded into raw and `dbt build` run in-process
    (seeds, models, data tests and unit tests)."""
    from dbt_helpers import run_dbt
    from sflux.ingest.loader import load_raw

    load_raw(spark, landing)
    result = run_dbt(["build"])
    failures = [r.node.unique_id for r in result.result.results if r.status not in ("success", "pass")]
    assert result.success, f"dbt build failed: {failures}"
    return result


@pytest.fixture(scope="session")
def consenting_users(spark, built) -> set[str]:
    """Raw ids of the members with analytics consent now, as loaded. Only they
    may appear (pseudonymized) outside the raw zone."""
    return current_consent(spark)


def current_consent(spark) -> set[str]:
    """The consent rule, recomputed in Python independently of the dbt macro
    (has_analytics_consent): a member's latest analytics event in
    raw.consent_events wins (withdraw on a same-second tie), else the
    profile's consent_analytics; members unknown to raw.users have none."""
    profiles = {r[0]: bool(r[1]) for r in spark.sql(
        "select user_id, consent_analytics from raw.users").collect()}
    latest: dict[str, tuple] = {}
    for user_id, action, ts in spark.sql(
            "select user_id, action, event_ts from raw.consent_events "
            "where consent_type = 'analytics'").collect():
        rank = (ts, action == "withdraw")
        if user_id not in latest or rank > latest[user_id][0]:
            latest[user_id] = (rank, action == "grant")
    return {u for u, flag in profiles.items() if (latest[u][1] if u in latest else flag)}


def pytest_collection_modifyitems(config, items):
    """Tests that change the shared warehouse run after every test that
    compares it with the landing files."""
    items.sort(key=lambda item: item.get_closest_marker("mutates_warehouse") is not None)


def string_values(spark, schemas=("anonymized", "analytics")) -> set[str]:
    """Every distinct string value of every relation in `schemas`."""
    values: set[str] = set()
    for schema in schemas:
        for table in spark.catalog.listTables(schema):
            if table.isTemporary:  # dbt's incremental __dbt_tmp views, not in the schema
                continue
            df = spark.table(f"{schema}.{table.name}")
            for field in df.schema.fields:
                if field.dataType.simpleString() == "string":
                    values |= {r[0] for r in df.select(field.name).distinct().collect()}
    return values
