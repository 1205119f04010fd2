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


def dbt_outcome(args: list[str]) -> tuple[bool, str]:
    """Run dbt in-process; (success, every error message), whether the
    failure is a node's or an on-run-start hook's."""
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke([*args, "--project-dir", str(REPO_ROOT)])
    messages = [str(result.exception or "")]
    if result.result is not None and hasattr(result.result, "results"):
        messages += [str(r.message or "") for r in result.result.results]
    return bool(result.success), "\n".join(messages)
