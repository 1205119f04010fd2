"""Building the dashboard file (scripts/build_report.py): read the marts,
render the page, write it where a reader opens it."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import yaml

from sflux.core import paths
from sflux.core.errors import UserError
from sflux.reporting import data as report_data
from sflux.reporting.dashboard import DashboardData, git_commit, render_dashboard

DEFAULT_NAME = "city_stress_dashboard.html"


def default_out() -> Path:
    return paths.home() / "reports" / DEFAULT_NAME


def project_min_cell_users() -> int | None:
    """The project default of the suppression threshold, to explain it on
    the page (a build with --vars overriding it is not detectable from the
    marts)."""
    try:
        project = yaml.safe_load((paths.REPO_ROOT / "dbt_project.yml").read_text(encoding="utf-8"))
        return int(project["vars"]["min_cell_users"])
    except (OSError, KeyError, TypeError, ValueError):
        return None


def write_atomically(path: Path, text: str) -> None:
    """A half-written dashboard is never left where a reader would open it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def build_dashboard(spark, out: Path, tenant: str | None = None) -> None:
    """Read the reporting marts and write the self-contained dashboard to
    `out`: all members', or only `tenant`'s rows of the tenant marts.
    UserError when the marts (or the tenant) are missing or the file cannot
    be written."""
    report_data.require_marts(spark, tenant)
    first, last = report_data.read_date_range(spark, tenant)
    sources = {} if tenant is None else {
        label: f"{report_data.source_table(mart, tenant)} (tenant {tenant})"
        for label, mart in (("matrix", report_data.MATRIX), ("cells", report_data.CELLS),
                            ("daily", report_data.DAILY))
    }
    data = DashboardData(
        tiers=report_data.read_tiers(spark),
        matrix=report_data.read_matrix(spark, tenant),
        cells=report_data.read_cells(spark, tenant=tenant),
        daily=report_data.read_daily(spark, tenant=tenant),
        tenant=tenant,
        sources=sources,
        first_date=first,
        last_date=last,
        built_at=datetime.now(timezone.utc).replace(microsecond=0),
        commit=git_commit(paths.REPO_ROOT),
        min_cell_users=project_min_cell_users(),
    )
    write_atomically(out, render_dashboard(data))
