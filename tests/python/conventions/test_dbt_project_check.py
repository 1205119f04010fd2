"""The dbt project check (scripts/check_dbt_project.py): each rule fires on a
small synthetic manifest and stays quiet once the fault is fixed, and the
real project passes. Pure Python plus one `dbt parse`: no Spark."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sflux.conventions.dbt_project import check

REPO_ROOT = Path(__file__).resolve().parents[3]
CLI = REPO_ROOT / "scripts" / "check_dbt_project.py"
FRESH = {"warn_after": {"count": 1, "period": "day"}, "error_after": {"count": None, "period": None}}
NO_FRESHNESS = {"warn_after": {"count": None, "period": None}, "error_after": {"count": None, "period": None}}


def _source(source_name: str, name: str, *, fresh: bool = True, meta: dict | None = None) -> dict[str, Any]:
    return {
        "unique_id": f"source.p.{source_name}.{name}", "resource_type": "source",
        "source_name": source_name, "name": name, "source_meta": {}, "meta": meta or {},
        "loaded_at_field": "_loaded_at" if fresh else None,
        "freshness": FRESH if fresh else NO_FRESHNESS,
        "config": {"meta": meta or {}, "freshness": FRESH if fresh else NO_FRESHNESS},
    }


def _model(name: str, layer: str, depends: list[str], *, description: str = "What it holds.",
           meta: dict | None = None) -> dict[str, Any]:
    return {
        "unique_id": f"model.p.{name}", "resource_type": "model", "name": name,
        "fqn": ["p", layer, name], "description": description, "meta": meta or {},
        "config": {"meta": meta or {}}, "depends_on": {"nodes": depends, "macros": []},
    }


def _test(model: str, test: str, column: str | None = None, suffix: str = "") -> dict[str, Any]:
    return {
        "unique_id": f"test.p.{test}_{model}_{column}{suffix}", "resource_type": "test",
        "attached_node": f"model.p.{model}", "column_name": column,
        "test_metadata": {"name": test, "kwargs": {}},
        "depends_on": {"nodes": [f"model.p.{model}"], "macros": []},
    }


def _manifest(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {
        "nodes": {n["unique_id"]: n for n in nodes if n["resource_type"] != "source"},
        "sources": {n["unique_id"]: n for n in nodes if n["resource_type"] == "source"},
    }


@pytest.fixture
def clean() -> dict[str, Any]:
    """A project that follows every rule: a staging model on its own source
    plus a declared consent model, a mart keyed by a combination."""
    return _manifest(
        _source("app", "users"),
        _source("app", "events"),
        _source("ops", "audit_log", fresh=False, meta={"freshness_exempt": "Written by hooks."}),
        _model("base_app__consent", "restricted", ["source.p.app.users"],
               meta={"joinable_in_staging": "The consent filter."}),
        _test("base_app__consent", "unique", "user_id"),
        _test("base_app__consent", "not_null", "user_id"),
        _model("stg_app__events", "staging", ["source.p.app.events", "model.p.base_app__consent"]),
        _test("stg_app__events", "unique", "event_id"),
        _test("stg_app__events", "not_null", "event_id"),
        _model("fct_events", "marts", ["model.p.stg_app__events"]),
        _test("fct_events", "unique_combination"),
    )


def _rules(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    return [(v.resource, v.rule) for v in check(manifest)]


def test_a_project_that_follows_the_rules_passes(clean):
    assert check(clean) == []


def test_a_model_without_description_fails(clean):
    clean["nodes"]["model.p.fct_events"]["description"] = "  \n"
    assert _rules(clean) == [("model.p.fct_events", "model-description")]


@pytest.mark.parametrize("tests", [
    [],
    [("unique", "event_id")],  # unique alone lets NULL keys through
    [("not_null", "event_id")],
    [("unique", "event_id"), ("not_null", "event_at")],  # not the same column
    [("accepted_values", "event_type")],
])
def test_a_model_without_primary_key_test_fails(clean, tests):
    nodes = clean["nodes"]
    for uid in [u for u, n in nodes.items() if n.get("attached_node") == "model.p.stg_app__events"]:
        del nodes[uid]
    for i, (name, column) in enumerate(tests):
        test = _test("stg_app__events", name, column, suffix=str(i))
        nodes[test["unique_id"]] = test
    assert _rules(clean) == [("model.p.stg_app__events", "model-primary-key")]


def test_a_test_attached_to_another_model_is_not_a_primary_key(clean):
    for node in clean["nodes"].values():
        if node.get("attached_node") == "model.p.fct_events":
            node["attached_node"] = "model.p.stg_app__events"
    assert _rules(clean) == [("model.p.fct_events", "model-primary-key")]


@pytest.mark.parametrize("layer, name", [("marts", "city_stress_matrix"), ("marts", "int_events"),
                                         ("intermediate", "events_joined")])
def test_a_mart_or_intermediate_model_without_its_layer_prefix_fails(clean, layer, name):
    mart = clean["nodes"]["model.p.fct_events"]
    mart.update(name=name, fqn=["p", layer, name])
    assert _rules(clean) == [("model.p.fct_events", "layer-name")]


def test_a_source_without_freshness_fails(clean):
    stale = _source("app", "users", fresh=False)
    clean["sources"][stale["unique_id"]] = stale
    assert _rules(clean) == [("source.p.app.users", "source-freshness")]


def test_freshness_needs_a_loaded_at_field(clean):
    users = clean["sources"]["source.p.app.users"]
    users["loaded_at_field"] = None
    assert _rules(clean) == [("source.p.app.users", "source-freshness")]


def test_a_freshness_exemption_needs_a_written_reason(clean):
    audit = clean["sources"]["source.p.ops.audit_log"]
    audit["meta"] = audit["config"]["meta"] = {"freshness_exempt": " "}
    assert _rules(clean) == [("source.p.ops.audit_log", "source-freshness")]
    # Declared once on the source, for all its tables, counts too.
    audit["meta"] = audit["config"]["meta"] = {}
    audit["source_meta"] = {"freshness_exempt": "Written by hooks."}
    assert _rules(clean) == []


def test_a_staging_model_reading_two_sources_fails(clean):
    clean["nodes"]["model.p.stg_app__events"]["depends_on"]["nodes"].append("source.p.app.users")
    assert _rules(clean) == [("model.p.stg_app__events", "staging-single-source")]


def test_a_staging_model_reading_another_systems_source_fails(clean):
    billing = _source("billing", "subscriptions")
    clean["sources"][billing["unique_id"]] = billing
    clean["nodes"]["model.p.stg_app__events"]["depends_on"]["nodes"][0] = billing["unique_id"]
    violations = check(clean)
    assert [(v.resource, v.rule) for v in violations] == [("model.p.stg_app__events", "staging-single-source")]
    assert "not a table of its own source 'app'" in violations[0].message


def test_a_staging_model_joining_an_undeclared_model_fails(clean):
    consent = clean["nodes"]["model.p.base_app__consent"]
    consent["meta"] = consent["config"]["meta"] = {}
    violations = check(clean)
    assert [(v.resource, v.rule) for v in violations] == [("model.p.stg_app__events", "staging-undeclared-join")]
    assert "model.p.base_app__consent" in violations[0].message


def test_a_staging_model_without_source_or_proper_name_fails(clean):
    rogue = copy.deepcopy(clean["nodes"]["model.p.stg_app__events"])
    rogue.update(unique_id="model.p.stg_events", name="stg_events",
                 depends_on={"nodes": ["model.p.base_app__consent"], "macros": []})
    clean["nodes"][rogue["unique_id"]] = rogue
    for name in ("unique", "not_null"):
        test = _test("stg_events", name, "event_id")
        clean["nodes"][test["unique_id"]] = test
    assert sorted(_rules(clean)) == [("model.p.stg_events", "staging-name"),
                                     ("model.p.stg_events", "staging-single-source")]


def test_the_cli_prints_one_line_per_violation_and_fails(clean, tmp_path: Path):
    clean["nodes"]["model.p.fct_events"]["description"] = ""
    clean["sources"]["source.p.app.users"] = _source("app", "users", fresh=False)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(clean), encoding="utf-8")
    run = subprocess.run([sys.executable, str(CLI), "--manifest", str(path)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 1, run.stderr
    assert run.stdout.splitlines() == [
        "model.p.fct_events: model has no description [model-description]",
        "source.p.app.users: source declares no freshness (loaded_at_field + warn_after/error_after)"
        " and no meta.freshness_exempt reason [source-freshness]",
    ]


def test_the_cli_rejects_a_file_that_is_no_manifest(tmp_path: Path):
    path = tmp_path / "manifest.json"
    path.write_text("{}", encoding="utf-8")
    run = subprocess.run([sys.executable, str(CLI), "--manifest", str(path)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 2
    assert run.stderr.strip() == f"check_dbt_project: error: {path} is not a dbt manifest (no nodes or sources)"


def test_the_real_project_passes():
    run = subprocess.run([sys.executable, str(CLI)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("check_dbt_project: ok (")
