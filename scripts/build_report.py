#!/usr/bin/env python3
"""Write the City Stress dashboard: one self-contained HTML file.

Reads the built marts only (analytics.fct_city_stress_matrix,
analytics.fct_city_heart_rate, analytics.fct_city_daily_heart_rate and the
subscription_tiers seed) and runs no dbt. The file inlines plotly.js, its
styles and its data: it opens from disk with no network and no server. It is
declared in dbt as the exposure `city_stress_dashboard`
(models/marts/city_trends/_city_trends__models.yml).

It is built for one audience at a time: all members (the default, `make
report`), or one tenant (--tenant), whose file holds only that tenant's rows
of the tenant marts (analytics.fct_tenant_city_*), nothing of the all-member
marts or of any other tenant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sflux.core.errors import UserError
from sflux.reporting.build import DEFAULT_NAME, default_out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"HTML file to write (default: $SANTEFLUX_HOME/reports/{DEFAULT_NAME}; reports/ is gitignored)",
    )
    parser.add_argument(
        "--tenant",
        default=None,
        help="build the dashboard of this tenant only (a tenant id of the tenant marts); "
        "default: all members",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = (args.out or default_out()).resolve()
    try:
        from sflux.core.spark import get_spark
        from sflux.reporting.build import build_dashboard

        build_dashboard(get_spark(), out, args.tenant)
    except UserError as exc:
        print(f"build_report: error: {exc}", file=sys.stderr)
        return 2
    size_mb = out.stat().st_size / 1e6
    audience = f"tenant {args.tenant}" if args.tenant is not None else "all members"
    print(f"build_report: wrote the City Stress dashboard of {audience} ({size_mb:.1f} MB, self-contained, works offline):")
    print(f"  {out}")
    print(f"  open it in a browser: {out.as_uri()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
