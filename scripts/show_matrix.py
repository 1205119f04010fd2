#!/usr/bin/env python3
"""Print the City Stress Matrix (analytics.city_stress_matrix) as a table.

Reads the built marts only; it runs no dbt. A cell shows the average heart
rate in bpm, `suppressed` when fewer than min_cell_users users contributed,
or `-` when the city has no reading in that tier.
"""

from __future__ import annotations

import argparse
import sys

from sflux.core.errors import UserError
from sflux.core.spark import get_spark, table_exists

MATRIX = "analytics.city_stress_matrix"
CELLS = "analytics.fct_city_heart_rate"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--decimals", type=int, default=1, help="decimals shown per cell (default 1; stored values are unrounded)"
    )
    return parser.parse_args(argv)


def render(rows: list[dict[str, object]], tiers: list[str], suppressed: set[tuple[str, str]], decimals: int) -> str:
    header = ["city", *tiers]
    body: list[list[str]] = []
    for row in rows:
        cells = [str(row["city"])]
        for tier in tiers:
            value = row[f"avg_hr_{tier.lower()}"]
            if value is not None:
                cells.append(f"{value:.{decimals}f}")
            elif (row["city"], tier) in suppressed:
                cells.append("suppressed")
            else:
                cells.append("-")
        body.append(cells)
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def fmt(line: list[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width) for i, (cell, width) in enumerate(zip(line, widths))
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), rule, *(fmt(line) for line in body)])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        spark = get_spark()
        for table in (MATRIX, CELLS):
            if not table_exists(spark, table):
                raise UserError(f"{table} does not exist yet: run `make build` (dbt build) first")
        tiers = [
            r["subscription_type"]
            for r in spark.sql("select subscription_type from analytics.subscription_tiers order by tier_rank").collect()
        ]
        rows = [r.asDict() for r in spark.sql(f"select * from {MATRIX} order by city").collect()]
        suppressed = {
            (r["city"], r["subscription_type"])
            for r in spark.sql(f"select city, subscription_type from {CELLS} where is_suppressed").collect()
        }
    except UserError as exc:
        print(f"show_matrix: error: {exc}", file=sys.stderr)
        return 2
    print("City Stress Matrix: average heart rate (bpm) per city x subscription tier")
    print(render(rows, tiers, suppressed, args.decimals))
    return 0


if __name__ == "__main__":
    sys.exit(main())
