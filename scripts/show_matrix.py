#!/usr/bin/env python3
"""Print the City Stress Matrix (analytics.fct_city_stress_matrix) as a table.

Reads the built marts only; it runs no dbt. A cell shows the average heart
rate in bpm, `suppressed` when fewer than min_cell_users users contributed,
or `-` when the city has no reading in that tier.
"""

from __future__ import annotations

import argparse
import sys

from sflux.core.errors import UserError
from sflux.core.spark import get_spark
from sflux.reporting.matrix import matrix_text

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--decimals", type=int, default=1, help="decimals shown per cell (default 1; stored values are unrounded)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        text = matrix_text(get_spark(), args.decimals)
    except UserError as exc:
        print(f"show_matrix: error: {exc}", file=sys.stderr)
        return 2
    print("City Stress Matrix: average heart rate (bpm) per city x subscription tier")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
