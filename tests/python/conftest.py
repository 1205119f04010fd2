"""Shared pytest fixtures.

One Spark session serves the whole test run (a JVM start costs ~10 s), and
one warehouse is built in it, once, through the user's own entry points
(generator CLI, loader CLI, `dbt build`, the DP release CLI, detect_pii CLI).
Every read-only test reads that warehouse; tests that change it are marked
`mutates_warehouse` and run last.

The pseudonymization key must be in the environment *before* the JVM starts,
because Spark reads it from its own process environment: it is set at import.

Markers (pytest.ini): every test that uses the `spark` fixture is marked
`spark` here, so `make check` runs the rest (`-m "not spark"`) with no JVM.
`make unit` runs the `unit` tests with SANTEFLUX_TEST_SCOPE=unit, on the
smallest warehouse the dbt unit tests need (see `unit_test_results`).
"""

from __future__ import annotations

import csv
import os
import re
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
# A second key of valid length in the JVM's environment, registered nowhere:
# tests point sflux.privacy.keys.KEY_ENV at it to attack with a wrong key.
WRONG_KEY_ENV = "SANTEFLUX_TEST_WRONG_KEY"

os.environ["SANTEFLUX_HOME"] = str(REPO_ROOT)
os.environ["SANTEFLUX_DATA_DIR"] = str(TEST_ROOT / "data")
os.environ["SANTEFLUX_SPARK_CORES"] = os.environ.get("SANTEFLUX_SPARK_CORES", "2")
os.environ["DBT_ENV_SECRET_PSEUDONYM_KEY"] = TEST_KEY
os.environ[WRONG_KEY_ENV] = secrets.token_hex(32)
os.environ["DBT_PROFILES_DIR"] = str(REPO_ROOT / "profiles")
os.environ["SANTEFLUX_EXPORTS_DIR"] = str(TEST_ROOT / "exports")  # GDPR export bundles
os.environ["DBT_TARGET_PATH"] = str(TEST_ROOT / "target")
os.environ["DBT_LOG_PATH"] = str(TEST_ROOT / "logs")
os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
os.environ.setdefault("SANTEFLUX_DBT_THREADS", "4")

# full: the whole suite on the shared warehouse; unit: `make unit`.
TEST_SCOPE = os.environ.get("SANTEFLUX_TEST_SCOPE", "full")


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


def _cli(script: str):
    """A CLI of scripts/ as a module, to run its main() in this process (and
    so in this JVM): the user's entry point, without a JVM start."""
    from script_loader import load_script

    return load_script(script)


def _failures(result) -> list[str]:
    return [r.node.unique_id for r in result.result.results if r.status not in ("success", "pass")]


@pytest.fixture(scope="session")
def built(request, spark, landing: Path, test_root: Path):
    """The shared warehouse: the landing files loaded by the loader CLI, then
    `dbt build` (seeds, models, data tests and unit tests; the default `dev`
    selector), then the DP release CLI (`make release`), then the PII detector CLI,
    which fails if a raw column holds detected PII and declares no policy.

    Once it is built, the Thrift pipeline (if a Thrift test is selected)
    keeps the marts it must reproduce and starts in the background: started
    any earlier, its four JVMs and build would compete for the 2 cores with
    this build, which every later test waits for anyway."""
    from dbt_helpers import run_dbt

    assert _cli("load_raw").main(["--input", str(landing), "--quiet"]) == 0
    result = run_dbt(["build"])
    assert result.success, f"dbt build failed: {_failures(result)}"
    assert _cli("release_dp").main(["--reason", "pytest shared warehouse"], spark=spark) == 0
    findings = test_root / "pii_findings.json"
    assert _cli("detect_pii").main(["--json", str(findings)], spark=spark) == 0
    pipeline = request.getfixturevalue("thrift_pipeline")
    if pipeline is not None:
        pipeline.keep_embedded_marts(spark)
        pipeline.start()
    return result


def _runs_thrift_tests(session) -> bool:
    return os.environ.get("SANTEFLUX_SKIP_THRIFT") != "1" and any(
        item.nodeid.startswith(THRIFT_TESTS) for item in session.items)


THRIFT_TESTS = "tests/python/cluster/test_thrift.py"


@pytest.fixture(scope="session")
def thrift_pipeline(request, test_root: Path, pseudonym_key: str):
    """The Thrift path's pipeline (loader, cluster, `dbt build --target
    thrift`) if a Thrift test is selected, else None. It starts in the
    background as soon as the shared warehouse is built (`built`), or when
    a Thrift test first waits for it, whichever comes first. Its cluster is
    stopped at the end."""
    if not _runs_thrift_tests(request.session):
        yield None
        return
    from thrift_pipeline import ThriftPipeline

    landing = request.getfixturevalue("landing")
    pipeline = ThriftPipeline(landing, test_root / "thrift", pseudonym_key)
    yield pipeline
    pipeline.stop()


@pytest.fixture(scope="session", autouse=True)
def _thrift_pipeline_in_background(thrift_pipeline):
    """Requested by the first test, so the pipeline exists for the whole
    session (and its cluster is stopped at its end, whoever started it)."""
    return thrift_pipeline


@pytest.fixture(scope="session")
def unit_test_results(request, test_root: Path) -> dict[str, str]:
    """{unit test id: status} of every dbt unit test of the project.

    In the full suite they ran inside the shared build (those of models the
    dev selector leaves out run here with `dbt test`). Under `make unit`
    (SANTEFLUX_TEST_SCOPE=unit) the smallest warehouse that lets them run is
    made instead: dbt unit tests read the column types of each tested
    model's inputs from the warehouse, so a tiny landing is loaded, then
    `dbt build --empty` loads the seeds, creates every model empty and runs
    the unit tests (data tests are left out)."""
    from dbt_helpers import run_dbt

    if TEST_SCOPE != "unit":
        results = list(request.getfixturevalue("built").result.results)
    else:
        request.getfixturevalue("spark")
        tiny = test_root / "landing-unit"
        subprocess.run([sys.executable, str(SCRIPTS / "generate_data.py"), "--out", str(tiny),
                        "--users", "5", "--days", "1", "--seed", "3", "--quiet"], check=True)
        assert _cli("load_raw").main(["--input", str(tiny), "--quiet"]) == 0
        # Seeds, every model created empty, and the unit tests; no data tests.
        empty = run_dbt(["build", "--empty", "--exclude", "resource_type:test"])
        assert empty.success, f"dbt build --empty failed: {_failures(empty)}"
        results = list(empty.result.results)
    # A dbt build runs a unit test only together with its model, and the dev
    # selector leaves the DP release's input out: its unit test runs alone.
    ran = {r.node.unique_id for r in results}
    left_out = [test.name for unique_id, test in run_dbt(["parse"]).result.unit_tests.items()
                if unique_id not in ran]
    if left_out:
        results += run_dbt(["test", "--select", *left_out]).result.results
    return {r.node.unique_id: str(r.status) for r in results
            if str(r.node.resource_type) == "unit_test"}


@pytest.fixture(scope="session")
def consenting_users(spark, built) -> set[str]:
    """Raw ids of the members with analytics consent now, as loaded. Only they
    may appear (pseudonymized) outside the raw zone."""
    return current_consent(spark)


def current_consent(spark) -> set[str]:
    """The consent rule, recomputed in Python independently of the dbt model
    (base_app__analytics_consent): a member's latest analytics event in
    raw.consent_events wins (withdraw on a same-second tie), else the
    profile's consent_analytics; members unknown to raw.users have none.
    It fails closed: a member with an analytics event dated later than now
    plus the clock-skew tolerance, or named by a consent line in
    raw.quarantine that is not an exact duplicate, has none either."""
    from sflux.ingest.contract import clock_skew_tolerance

    profiles = {r[0]: bool(r[1]) for r in spark.sql(
        "select user_id, consent_analytics from raw.users").collect()}
    future = spark.sql("select current_timestamp()").first()[0] + clock_skew_tolerance()
    latest: dict[str, tuple] = {}
    held: set[str] = set()
    for user_id, action, ts in spark.sql(
            "select user_id, action, event_ts from raw.consent_events "
            "where consent_type = 'analytics'").collect():
        if ts > future:
            held.add(user_id)
            continue
        rank = (ts, action == "withdraw")
        if user_id not in latest or rank > latest[user_id][0]:
            latest[user_id] = (rank, action == "grant")
    for (line,) in spark.sql(
            "select raw_line from raw.quarantine where dataset = 'consent_events' "
            "and reason not like 'duplicate %'").collect():
        fields = next(csv.reader([line]), [""])
        held |= {fields[0].strip() if fields else ""} | set(re.split(r"""[\s,;|"'=]+""", line))
    return {u for u, flag in profiles.items()
            if u not in held and (latest[u][1] if u in latest else flag)}


def pytest_collection_modifyitems(config, items):
    """Mark every test that needs a Spark JVM (through the `spark` fixture,
    directly or not) `spark`; run the tests that change the shared
    warehouse after every read-only test, and the Thrift tests last: their
    pipeline runs in the background meanwhile, and they compare with the
    marts the shared build made, which `built` kept for them."""
    # unit_test_results reaches the shared build (or the unit warehouse)
    # through request.getfixturevalue, which the fixture closure cannot see.
    needs_spark = {"spark", "unit_test_results"}
    for item in items:
        if needs_spark & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.spark)

    def order(item) -> int:
        if item.nodeid.startswith(THRIFT_TESTS):
            return 2
        return 1 if item.get_closest_marker("mutates_warehouse") is not None else 0

    items.sort(key=order)


def outside_raw_schemas(spark) -> list[str]:
    """Every schema of the catalog but the raw zones, as the leak guard
    (tests/privacy/assert_no_pii_outside_raw.sql) scans them: `raw` and any
    `<target>_raw` are restricted; a test-failure or dev schema is not."""
    names = [r[0] for r in spark.sql("show databases").collect()]
    return sorted(n for n in names if n != "raw" and not n.endswith("_raw"))


def string_values(spark, schemas=None) -> set[str]:
    """Every distinct string value of every relation in `schemas` (default:
    every schema outside the raw zones)."""
    values: set[str] = set()
    for schema in outside_raw_schemas(spark) if schemas is None else schemas:
        for table in spark.catalog.listTables(schema):
            if table.isTemporary:  # dbt's incremental __dbt_tmp views, not in the schema
                continue
            df = spark.table(f"`{schema}`.`{table.name}`")
            for field in df.schema.fields:
                if field.dataType.simpleString() == "string":
                    values |= {r[0] for r in df.select(f"`{field.name}`").distinct().collect()}
    return values
