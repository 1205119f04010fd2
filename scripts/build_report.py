#!/usr/bin/env python3
"""Write the City Stress dashboard: one self-contained HTML file.

Reads the built marts only (analytics.city_stress_matrix,
analytics.fct_city_heart_rate, analytics.fct_city_daily_heart_rate and the
subscription_tiers seed) and runs no dbt. The file inlines plotly.js, its
styles and its data: it opens from disk with no network and no server. It is
declared in dbt as the exposure `city_stress_dashboard`
(models/marts/city_trends/_city_trends__models.yml).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import yaml

from sflux.core import paths
from sflux.core.errors import UserError

DEFAULT_NAME = "city_stress_dashboard.html"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"HTML file to write (default: $SANTEFLUX_HOME/reports/{DEFAULT_NAME}; reports/ is gitignored)",
    )
    return parser.parse_args(argv)


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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = (args.out or paths.home() / "reports" / DEFAULT_NAME).resolve()
    try:
        from sflux.reporting import data as report_data
        from sflux.reporting.dashboard import DashboardData, git_commit, render_dashboard
        from sflux.core.spark import get_spark

        spark = get_spark()
        report_data.require_marts(spark)
        first, last = report_data.read_date_range(spark)
        data = DashboardData(
            tiers=report_data.read_tiers(spark),
            matrix=report_data.read_matrix(spark),
            cells=report_data.read_cells(spark),
            daily=report_data.read_daily(spark),
            first_date=first,
            last_date=last,
            built_at=datetime.now(timezone.utc).replace(microsecond=0),
            commit=git_commit(paths.REPO_ROOT),
            min_cell_users=project_min_cell_users(),
        )
        write_atomically(out, render_dashboard(data))
    except UserError as exc:
        print(f"build_report: error: {exc}", file=sys.stderr)
        return 2
    size_mb = out.stat().st_size / 1e6
    print(f"build_report: wrote the City Stress dashboard ({size_mb:.1f} MB, self-contained, works offline):")
    print(f"  {out}")
    print(f"  open it in a browser: {out.as_uri()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
