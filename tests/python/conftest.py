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
import sys
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

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
    from sflux.spark import get_spark

    session = get_spark()
    yield session
    session.stop()
