#!/usr/bin/env python3
"""Explore one city: its City Stress Matrix row and its daily heart-rate trend.

Reads the built marts only (analytics.fct_city_stress_matrix,
analytics.fct_city_heart_rate, analytics.fct_city_daily_heart_rate); it runs
no dbt. On the local target it reads their parquet files without starting
Spark (under 2 s); on another target (SANTEFLUX_TARGET=thrift) through
Spark. Both print the same bytes. A cell prints
`suppressed` when fewer than min_cell_users users contributed (it is never
shown as 0) and `-` when there is no data.

Bad input (an unknown city or tier, a malformed date, --from after --to)
prints one line to stderr and exits with code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sflux.core.errors import UserError
from sflux.reporting import city_trends as report
from sflux.reporting import marts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Example: city_report.py --city Lyon --from 2026-11-01 --to 2026-11-07 --tier VIP --png lyon.png",
    )
    parser.add_argument(
        "--city",
        required=True,
        help="city as stored in the marts (case and accents may differ if the match is unique: zurich -> Zürich)",
    )
    parser.add_argument(
        "--from", dest="date_from", metavar="DATE", help="first reading date, yyyy-MM-dd (UTC; default: first in the data)"
    )
    parser.add_argument(
        "--to", dest="date_to", metavar="DATE", help="last reading date, yyyy-MM-dd, inclusive (default: last in the data)"
    )
    parser.add_argument("--tier", help="only this subscription tier (e.g. VIP; default: every tier)")
    parser.add_argument("--png", type=Path, metavar="FILE", help="also write the daily trend as a PNG chart to FILE")
    parser.add_argument(
        "--decimals", type=int, default=1, help="decimals shown for averages (default 1; stored values are unrounded)"
    )
    parser.add_argument(
        "--engine",
        choices=marts.ENGINES,
        default="auto",
        help="how the marts are read: `files` (parquet files, no JVM), `spark` (a Spark session), "
        "or `auto` (default): files on the local target, Spark on any other SANTEFLUX_TARGET",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        # Dates are checked before the marts are opened: a typo costs no JVM start.
        start, end = report.parse_date_range(args.date_from, args.date_to)
        if args.decimals < 0:
            raise UserError(f"--decimals must be 0 or more (got {args.decimals})")

        source = marts.open_marts(args.engine)
        tiers = source.tiers()
        matrix = source.matrix()
        city = report.resolve_city(args.city, [r["city"] for r in matrix])
        tier = report.resolve_tier(args.tier, tiers)
        shown_tiers = [tier] if tier else tiers
        suppressed = {c["subscription_type"] for c in source.cells(city) if c["is_suppressed"]}
        first, last = source.date_range()
        rows = source.daily(city, start, end, tier)
    except UserError as exc:
        print(f"city_report: error: {exc}", file=sys.stderr)
        return 2

    matrix_row = next(r for r in matrix if r["city"] == city)
    print(f"{city}: City Stress Matrix row (average heart rate in bpm, all dates {first} to {last})")
    print(report.render_matrix_row(city, matrix_row, shown_tiers, suppressed, args.decimals))
    print()

    print(f"{city}: daily trend, {start or first} to {end or last}, {tier or 'all tiers'} "
          "(`suppressed`: too few users that day; `-`: no data)")
    span = report.clip_range(start, end, first, last)
    if span is None:
        print(f"(no data in this range: the marts cover {first} to {last})")
        cells = []
    else:
        cells = report.trend_grid(rows, shown_tiers, report.date_span(*span))
        print(report.render_trend(cells, args.decimals))

    if args.png:
        from sflux.reporting.chart import write_trend_png

        try:
            write_trend_png(args.png, city, cells, shown_tiers)
        except UserError as exc:
            print(f"city_report: error: {exc}", file=sys.stderr)
            return 2
        print(f"\nwrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
