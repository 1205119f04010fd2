"""Run dbt in-process, so it reuses the test session's Spark session."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_dbt(args: list[str]):
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke([*args, "--project-dir", str(REPO_ROOT)])
    if result.exception is not None:
        raise result.exception
    return result
