"""The analytics engineer's loop, without a warehouse: `make help` lists
every target, the default selector leaves the DP release out of every
build, and a `dev` target builds into schemas of its own. (That linting
starts no Spark is checked by `make lint` itself.)"""

from __future__ import annotations

import json
import re
import subprocess

from dbt_helpers import REPO_ROOT, run_dbt


def _phony_targets() -> set[str]:
    text = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    return {name for line in re.findall(r"^\.PHONY:(.*)$", text, flags=re.M) for name in line.split()}


def test_make_help_lists_every_target_with_its_description():
    out = subprocess.run(["make", "--no-print-directory", "help"], cwd=REPO_ROOT, capture_output=True,
                         text=True, check=True).stdout
    listed = dict(re.findall(r"^  make (\S+)\s+(.+)$", out, flags=re.M))
    targets = _phony_targets()
    assert {"test", "check", "unit", "release", "build-changed", "help"} <= targets
    assert targets == set(listed), f"missing from help: {targets - set(listed)}; unknown: {set(listed) - targets}"
    assert all(description.strip() for description in listed.values())


def _ls(*args: str) -> list[dict]:
    result = run_dbt(["ls", "--quiet", "--output", "json", "--output-keys", "name resource_type tags", *args])
    return [json.loads(line) for line in result.result]


def test_default_selector_builds_no_release_and_release_builds_only_releases():
    """A dev build (and so CI and an erasure rebuild) leaves out the DP
    release's input and its data tests; the `release` selector holds only
    them (plus the input's unit test, which a dev build runs too)."""
    default = {n["name"]: n["resource_type"] for n in _ls()}
    release = {n["name"]: n["resource_type"] for n in _ls("--selector", "release")}
    assert {name for name, kind in release.items() if kind == "model"} == {"int_event_cells_clipped"}
    assert not {name for name, kind in release.items() if kind not in ("model", "test", "unit_test")}
    assert not {name for name, kind in default.items() if kind in ("model", "test") and name in release}
    assert not any("int_event_cells_clipped" in name for name, kind in default.items() if kind == "test")
    assert default.get("test_event_cells_are_clipped_over_the_declared_domain") == "unit_test"
    # Published by scripts/release_dp.py only: no dbt model can write it.
    assert "fct_daily_event_counts_dp" not in default
    assert "fct_city_stress_matrix" in default


def _schemas(target: str) -> dict[str, str]:
    result = run_dbt(["ls", "--quiet", "--target", target, "--resource-type", "model", "--resource-type", "seed",
                      "--output", "json", "--output-keys", "name schema"])
    return {n["name"]: n["schema"] for n in map(json.loads, result.result)}


def test_dev_target_builds_into_its_own_schemas_and_local_keeps_the_zone_names():
    local, dev = _schemas("local"), _schemas("dev")
    assert set(local.values()) == {"raw", "anonymized", "analytics"}
    assert set(local) == set(dev)
    assert all(dev[name] == f"dev_{schema}" for name, schema in local.items())
