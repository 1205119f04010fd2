"""Rules the dbt graph must follow, checked on the manifest of `dbt parse`
(no warehouse, no Spark), so the lineage dbt shows is the lineage there is.

- every model has a description;
- every model has a primary-key test: `unique` and `not_null` on one column,
  or the project's `unique_combination` test (tests/generic/);
- every source table declares freshness (a `loaded_at_field` or
  `loaded_at_query`, and a `warn_after` or `error_after`), or says in
  `meta.freshness_exempt` why it cannot have one;
- a staging model reads one source table, of its own source system (the
  `<source>` of `stg_<source>__<entity>`); any other node it reads must be
  declared joinable with `meta.joinable_in_staging`, the reason, on that node;
- intermediate and mart model names carry their layer's prefix (`int_`;
  `fct_` or `dim_`).

Deliberate exceptions are thus written where they happen, in the YAML of the
node that is the exception.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sflux.core.errors import UserError

PRIMARY_KEY_COMBINATION_TEST = "unique_combination"
FRESHNESS_EXEMPT = "freshness_exempt"
JOINABLE_IN_STAGING = "joinable_in_staging"
# Folder under models/ -> the name prefixes its models may carry.
LAYER_PREFIXES = {"intermediate": ("int_",), "marts": ("fct_", "dim_")}


@dataclass(frozen=True, order=True)
class Violation:
    resource: str  # dbt unique id
    rule: str
    message: str

    def line(self) -> str:
        return f"{self.resource}: {self.message} [{self.rule}]"


def load_manifest(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the dbt manifest {path}: {exc}") from None
    if not isinstance(document, dict) or "nodes" not in document or "sources" not in document:
        raise UserError(f"{path} is not a dbt manifest (no nodes or sources)")
    return document


def _meta(node: Mapping[str, Any]) -> dict[str, Any]:
    """Node meta as dbt merges it: source-level, config and property meta."""
    return {
        **(node.get("source_meta") or {}),
        **((node.get("config") or {}).get("meta") or {}),
        **(node.get("meta") or {}),
    }


def _reason(node: Mapping[str, Any], key: str) -> str:
    """The written reason under meta `key`, or '' when there is none."""
    value = _meta(node).get(key)
    return value.strip() if isinstance(value, str) else ""


def _models(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    return sorted(
        (n for n in manifest["nodes"].values() if n.get("resource_type") == "model"),
        key=lambda n: n["unique_id"],
    )


def _tests_by_model(manifest: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    tests: dict[str, list[dict[str, Any]]] = {}
    for node in manifest["nodes"].values():
        if node.get("resource_type") == "test" and node.get("attached_node"):
            tests.setdefault(node["attached_node"], []).append(node)
    return tests


def _test_name(test: Mapping[str, Any]) -> str | None:
    return (test.get("test_metadata") or {}).get("name")


def has_primary_key_test(tests: Iterable[Mapping[str, Any]]) -> bool:
    """`unique` and `not_null` on the same column, or a unique combination."""
    per_column: dict[str, set[str]] = {}
    for test in tests:
        name = _test_name(test)
        if name == PRIMARY_KEY_COMBINATION_TEST:
            return True
        if name in ("unique", "not_null") and test.get("column_name"):
            per_column.setdefault(test["column_name"], set()).add(name)
    return any(names == {"unique", "not_null"} for names in per_column.values())


def check_models(manifest: Mapping[str, Any]) -> list[Violation]:
    tests = _tests_by_model(manifest)
    found = []
    for model in _models(manifest):
        uid = model["unique_id"]
        if not (model.get("description") or "").strip():
            found.append(Violation(uid, "model-description", "model has no description"))
        if not has_primary_key_test(tests.get(uid, [])):
            found.append(Violation(
                uid, "model-primary-key",
                f"model has no primary-key test (unique + not_null on one column, "
                f"or {PRIMARY_KEY_COMBINATION_TEST})"))
    return found


def check_layer_names(manifest: Mapping[str, Any]) -> list[Violation]:
    found = []
    for model in _models(manifest):
        fqn = model.get("fqn") or []
        prefixes = LAYER_PREFIXES.get(fqn[1]) if len(fqn) > 1 else None
        if prefixes and not model["name"].startswith(prefixes):
            found.append(Violation(
                model["unique_id"], "layer-name",
                f"{fqn[1]} model name does not start with {' or '.join(prefixes)}"))
    return found


def _declares_freshness(source: Mapping[str, Any]) -> bool:
    config = source.get("config") or {}
    loaded_at = (source.get("loaded_at_field") or config.get("loaded_at_field")
                 or source.get("loaded_at_query") or config.get("loaded_at_query"))
    freshness = source.get("freshness") or config.get("freshness") or {}
    thresholds = [freshness.get("warn_after") or {}, freshness.get("error_after") or {}]
    return bool(loaded_at) and any(t.get("count") and t.get("period") for t in thresholds)


def check_sources(manifest: Mapping[str, Any]) -> list[Violation]:
    found = []
    for source in sorted(manifest["sources"].values(), key=lambda n: n["unique_id"]):
        if _declares_freshness(source) or _reason(source, FRESHNESS_EXEMPT):
            continue
        found.append(Violation(
            source["unique_id"], "source-freshness",
            f"source declares no freshness (loaded_at_field + warn_after/error_after) "
            f"and no meta.{FRESHNESS_EXEMPT} reason"))
    return found


def _is_staging(model: Mapping[str, Any]) -> bool:
    fqn = model.get("fqn") or []
    return model["name"].startswith("stg_") or (len(fqn) > 1 and fqn[1] == "staging")


def _own_source_name(model_name: str) -> str | None:
    """`app` for stg_app__users; None when the name does not follow the rule."""
    prefix, sep, _ = model_name.partition("__")
    return prefix[len("stg_"):] if sep and prefix.startswith("stg_") else None


def check_staging(manifest: Mapping[str, Any]) -> list[Violation]:
    found = []
    everything = {**manifest["nodes"], **manifest["sources"]}
    for model in _models(manifest):
        if not _is_staging(model):
            continue
        uid = model["unique_id"]
        own = _own_source_name(model["name"])
        if own is None:
            found.append(Violation(uid, "staging-name", "staging model is not named stg_<source>__<entity>"))
        depends = sorted(set((model.get("depends_on") or {}).get("nodes") or []))
        sources = [d for d in depends if d.startswith("source.")]
        if not sources:
            found.append(Violation(uid, "staging-single-source", "staging model reads no source"))
        elif len(sources) > 1:
            found.append(Violation(
                uid, "staging-single-source",
                f"staging model reads {len(sources)} sources ({', '.join(sources)}); "
                f"join another source through a model declared with meta.{JOINABLE_IN_STAGING}"))
        for dep in sources:
            source_name = (everything.get(dep) or {}).get("source_name")
            if own is not None and source_name is not None and source_name != own:
                found.append(Violation(
                    uid, "staging-single-source",
                    f"staging model reads {dep}, not a table of its own source '{own}'"))
        for dep in depends:
            if dep.startswith("source."):
                continue
            if not _reason(everything.get(dep) or {}, JOINABLE_IN_STAGING):
                found.append(Violation(
                    uid, "staging-undeclared-join",
                    f"staging model reads {dep}, which declares no meta.{JOINABLE_IN_STAGING} reason"))
    return found


def check(manifest: Mapping[str, Any]) -> list[Violation]:
    """Every violation of the project's graph rules, sorted."""
    return sorted([*check_models(manifest), *check_layer_names(manifest), *check_sources(manifest),
                   *check_staging(manifest)])
