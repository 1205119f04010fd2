"""Where the API reads and writes. Everything can be overridden from the
environment, so tests and the load test point it at their own files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sflux.core import paths
from sflux.api.errors import ConfigError

# The one place the API names the marts it serves. The analytics schema's
# tables live in <warehouse>/analytics.db/<table>/ as parquet directories.
MARTS_SCHEMA_DIR = "analytics.db"
MATRIX_TABLE = "fct_city_stress_matrix"
CELLS_TABLE = "fct_city_heart_rate"
DAILY_TABLE = "fct_city_daily_heart_rate"
TIERS_TABLE = "subscription_tiers"

# A tenant-scoped request reads only rows whose tenant column equals its
# tenant, from the tenant marts (models/marts/tenants/), never from the
# all-member ones (a mart with tenant_id is refused as an all-member view).
TENANT_COLUMN = "tenant_id"
TENANT_TABLES = {
    MATRIX_TABLE: "fct_tenant_city_stress_matrix",
    CELLS_TABLE: "fct_tenant_city_heart_rate",
    DAILY_TABLE: "fct_tenant_city_daily_heart_rate",
}
# Every table the API reads (/health reports each).
MART_TABLES = (MATRIX_TABLE, CELLS_TABLE, DAILY_TABLE, TIERS_TABLE, *TENANT_TABLES.values())

# The pipeline's key must never be in the API's environment (issue 12 s.1).
KEY_ENV = "DBT_ENV_SECRET_PSEUDONYM_KEY"


@dataclass(frozen=True)
class Settings:
    analytics_dir: Path
    tokens_file: Path
    audit_file: Path
    personas_file: Path
    # Seconds a mart snapshot is served before its directory is listed again.
    recheck_seconds: float = 0.5

    @classmethod
    def from_env(cls) -> Settings:
        secrets_dir = paths.home() / ".secrets" / "api"
        return cls(
            analytics_dir=_env_path(
                "SANTEFLUX_API_ANALYTICS_DIR", paths.data_dir() / "warehouse" / MARTS_SCHEMA_DIR
            ),
            tokens_file=_env_path("SANTEFLUX_API_TOKENS", secrets_dir / "tokens.json"),
            audit_file=_env_path("SANTEFLUX_API_AUDIT", secrets_dir / "audit.jsonl"),
            personas_file=_env_path("SANTEFLUX_PERSONAS", paths.REPO_ROOT / "conf" / "personas.yml"),
            recheck_seconds=_env_seconds("SANTEFLUX_API_RECHECK_SECONDS", 0.5),
        )


def _env_seconds(name: str, default: float) -> float:
    text = os.environ.get(name)
    try:
        value = float(text) if text else default
    except ValueError:
        value = -1.0
    if not 0 <= value <= 60:
        raise ConfigError(f"{name}={text!r} must be a number of seconds from 0 to 60")
    return value


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).resolve() if value else default
