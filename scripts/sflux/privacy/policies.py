"""Read the privacy policies and dbt vars the scripts need, from the same
YAML files dbt reads, so a script never disagrees with the models.

Policies are declared once per raw column in the source YAML
(`meta: {pii: ..., treatment: ...}`); see models/staging/*/_*__sources.yml.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from sflux.core import paths
from sflux.core.errors import UserError


@dataclass(frozen=True)
class ColumnPolicy:
    table: str  # schema.table of the raw relation
    column: str
    pii: str | None
    treatment: str | None


def project_var(name: str) -> Any:
    """A var from dbt_project.yml (its default; `--vars` overrides are dbt's)."""
    project_file = paths.REPO_ROOT / "dbt_project.yml"
    with project_file.open(encoding="utf-8") as handle:
        dbt_vars = (yaml.safe_load(handle) or {}).get("vars", {})
    if name not in dbt_vars:
        raise UserError(f"{project_file} lacks var {name}")
    return dbt_vars[name]


def source_policies() -> list[ColumnPolicy]:
    """Every column declared in a source YAML under models/, with its policy."""
    found: list[ColumnPolicy] = []
    for yml in sorted((paths.REPO_ROOT / "models").rglob("_*__sources.yml")):
        with yml.open(encoding="utf-8") as handle:
            document = yaml.safe_load(handle) or {}
        for source in document.get("sources", []):
            schema = source.get("schema", source["name"])
            for table in source.get("tables", []):
                for column in table.get("columns", []):
                    meta = dict(column.get("meta") or {})
                    meta.update((column.get("config") or {}).get("meta") or {})
                    found.append(ColumnPolicy(
                        table=f"{schema}.{table.get('identifier', table['name'])}",
                        column=column["name"],
                        pii=meta.get("pii"),
                        treatment=meta.get("treatment"),
                    ))
    return found


def tokenized_columns(domain: str) -> list[ColumnPolicy]:
    """The raw columns whose values the vault tokenizes under `domain`."""
    return [p for p in source_policies()
            if p.treatment == "tokenize" and (p.pii or p.column) == domain]
