"""dbt run in-process, from the CLIs: in-process so dbt reuses the caller's
Spark session (the embedded Derby metastore admits one JVM)."""

from __future__ import annotations

import os
from pathlib import Path

from sflux.core import paths
from sflux.core.errors import UserError


def default_manifest() -> Path:
    """Where `dbt parse` / `dbt build` write the manifest."""
    target = os.environ.get("DBT_TARGET_PATH") or str(paths.REPO_ROOT / "target")
    return Path(target) / "manifest.json"


def parse_project(manifest: Path) -> None:
    """Write the manifest with `dbt parse` (it needs no warehouse)."""
    from dbt.cli.main import dbtRunner

    os.environ.setdefault("DBT_PROFILES_DIR", str(paths.REPO_ROOT / "profiles"))
    result = dbtRunner().invoke(["parse", "--quiet", "--project-dir", str(paths.REPO_ROOT)])
    if not result.success or not manifest.exists():
        raise UserError(f"`dbt parse` did not produce {manifest}; run it yourself to see why")


def build() -> None:
    """`dbt build` of the whole project; RuntimeError when it fails."""
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(["build", "--quiet", "--project-dir", str(paths.REPO_ROOT)])
    if not result.success:
        raise RuntimeError(f"dbt build failed: {result.exception or 'see logs/dbt.log'}")
