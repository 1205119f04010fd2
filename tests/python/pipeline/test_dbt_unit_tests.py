"""Every dbt unit test of the project (window edges, dedupe rules, matrix
pivots: `unit_tests:` in the models' YAML) ran and passed. In the full suite
they run inside the shared `dbt build`; `make unit` runs them alone on the
smallest warehouse (conftest.unit_test_results)."""

from __future__ import annotations

import pytest

from dbt_helpers import run_dbt

pytestmark = [pytest.mark.unit, pytest.mark.spark]


def test_every_dbt_unit_test_ran_and_passed(unit_test_results: dict[str, str]):
    declared = set(run_dbt(["parse"]).result.unit_tests)
    assert declared, "the project declares no dbt unit test"
    assert set(unit_test_results) == declared
    failed = {node_id: status for node_id, status in unit_test_results.items() if status != "pass"}
    assert not failed, failed
