"""Which relations hold a data subject's rows, discovered from dbt metadata.

A source table or model declares that it holds subject data with a
table-level `meta` (in its YAML, next to its columns):

    meta:
      subject_key: user_id            # the column that identifies the subject
      subject_key_kind: raw_id        # raw_id | pseudonym | tokenized_value
      retention_days: 90              # optional, for purge-expired
      retention_column: reading_date  # optional, a date/timestamp column

so `scripts/gdpr.py` finds every such relation in the dbt manifest, not in a
hand-kept list: a new model tagged this way is exported and erased
automatically. Kinds:
  raw_id           the key column holds the raw user id (restricted zone);
  raw_text         it holds free text that may contain the raw id as a
                   field (the quarantine's rejected lines);
  pseudonym        it holds HMAC(key, user id) (anonymized zone);
  tokenized_value  it holds raw values the token vault tokenized (the vault).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sflux.core import paths
from sflux.core.errors import UserError

KINDS = ("raw_id", "raw_text", "pseudonym", "tokenized_value")


@dataclass(frozen=True)
class SubjectRelation:
    relation: str  # schema.table
    zone: str
    key_column: str
    key_kind: str
    retention_days: int | None
    retention_column: str | None
    resource: str  # dbt unique id, for messages


def manifest_path() -> Path:
    target = os.environ.get("DBT_TARGET_PATH") or str(paths.REPO_ROOT / "target")
    return Path(target) / "manifest.json"


def _parse_project() -> None:
    """Write the manifest with `dbt parse` (no warehouse connection needed)."""
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(["parse", "--quiet", "--project-dir", str(paths.REPO_ROOT)])
    if not result.success:
        raise UserError(f"`dbt parse` failed: {result.exception}")


def _meta(node: dict[str, Any]) -> dict[str, Any]:
    return {**((node.get("config") or {}).get("meta") or {}), **(node.get("meta") or {})}


def discover(manifest: Path | None = None) -> list[SubjectRelation]:
    """Every relation tagged with `subject_key`, sorted raw zone first."""
    path = manifest or manifest_path()
    if manifest is None:
        _parse_project()  # always current: the YAML may have changed since the last build
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the dbt manifest {path}: {exc}") from None
    nodes = [*document.get("sources", {}).values(),
             *(n for n in document.get("nodes", {}).values()
               if n.get("resource_type") in ("model", "seed", "snapshot"))]
    found = []
    for node in nodes:
        meta = _meta(node)
        if "subject_key" not in meta:
            continue
        kind = meta.get("subject_key_kind", "raw_id")
        if kind not in KINDS:
            raise UserError(f"{node['unique_id']}: subject_key_kind must be one of {KINDS}, got {kind!r}")
        if (node.get("config") or {}).get("materialized") == "ephemeral":
            continue  # never stored
        table = node.get("identifier") or node.get("alias") or node["name"]
        found.append(SubjectRelation(
            relation=f"{node['schema']}.{table}",
            zone=str(meta.get("zone", node["schema"])),
            key_column=str(meta["subject_key"]),
            key_kind=kind,
            retention_days=int(meta["retention_days"]) if "retention_days" in meta else None,
            retention_column=meta.get("retention_column"),
            resource=node["unique_id"],
        ))
    order = {"raw_id": 0, "raw_text": 0, "tokenized_value": 1, "pseudonym": 2}
    return sorted(found, key=lambda r: (order[r.key_kind], r.relation))


DOMAIN_CALL = re.compile(r"domain_pseudonym\(\s*'[^']*'\s*,\s*'(\w+)'\s*\)")


def pseudonym_domains() -> list[str]:
    """The domains in which models key members by a domain pseudonym
    (macro domain_pseudonym, e.g. the users table's `users`): a relation
    keyed so is rebuilt rather than erased by row, and verification looks
    for the subject there under that pseudonym too."""
    found: set[str] = set()
    for path in (paths.REPO_ROOT / "models").rglob("*.sql"):
        found |= set(DOMAIN_CALL.findall(path.read_text(encoding="utf-8")))
    return sorted(found)
