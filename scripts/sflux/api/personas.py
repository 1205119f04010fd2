"""The personas declared in conf/personas.yml: the only place that says which
API scopes a persona opens and whether its tokens are tenant-scoped."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from sflux.api.errors import ConfigError

SCOPES = ("matrix", "trend", "time_range")
ZONES = ("raw", "anonymized", "analytics")
REQUIRED_PERSONAS = ("analyst", "data_scientist", "tenant", "dpo", "engineer")
FIELDS = {"description", "reads", "may_do", "api", "tenant"}


@dataclass(frozen=True)
class Persona:
    name: str
    description: str
    reads: tuple[str, ...]
    may_do: str
    api: tuple[str, ...]
    tenant_scoped: bool


def load_personas(path: Path) -> dict[str, Persona]:
    """Every persona of the file, checked strictly: a typo in a scope or a
    field would otherwise silently open or close an endpoint."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"personas file {path} not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"personas file {path} is not valid YAML: {exc}".splitlines()[0]) from None
    declared = document.get("personas") if isinstance(document, dict) else None
    if not isinstance(declared, dict):
        raise ConfigError(f"personas file {path} needs a top-level 'personas:' mapping")
    personas = {name: _persona(path, name, spec) for name, spec in declared.items()}
    missing = [name for name in REQUIRED_PERSONAS if name not in personas]
    if missing:
        raise ConfigError(f"personas file {path} lacks persona(s) {', '.join(missing)}")
    return personas


def _persona(path: Path, name: str, spec: object) -> Persona:
    where = f"{path}: persona {name!r}"
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be a mapping")
    unknown = set(spec) - FIELDS
    missing = FIELDS - set(spec)
    if unknown or missing:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}, missing field(s) {sorted(missing)}")
    api = spec["api"] or []
    bad_scopes = [s for s in api if s not in SCOPES]
    if bad_scopes:
        raise ConfigError(f"{where}: unknown API scope(s) {bad_scopes}; scopes: {', '.join(SCOPES)}")
    bad_zones = [z for z in spec["reads"] or [] if z not in ZONES]
    if bad_zones:
        raise ConfigError(f"{where}: unknown zone(s) {bad_zones}; zones: {', '.join(ZONES)}")
    if not isinstance(spec["tenant"], bool):
        raise ConfigError(f"{where}: 'tenant' must be true or false")
    return Persona(
        name=name,
        description=str(spec["description"]).strip(),
        reads=tuple(spec["reads"] or ()),
        may_do=str(spec["may_do"]).strip(),
        api=tuple(api),
        tenant_scoped=spec["tenant"],
    )
