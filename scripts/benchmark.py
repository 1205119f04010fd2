#!/usr/bin/env python3
"""Benchmark: the dbt build of the vitals pipeline against the case-study
notebook as a PySpark DataFrame job (from the raw zone, and from the landing
CSVs), the same job with Python UDFs (seed 001) and a one-query Spark SQL
lower bound (issue 5, section 2; issue 13, section 1).

For each size: generate landing files, load them once into a fresh data dir
(the loader's CSV->parquet time is reported on its own line), then run every
variant, each in a fresh JVM with the session confs of profiles/profiles.yml
(target `local`), in the order a, b, c, d, e:

  (a) dbt      `dbt run --select +fct_city_stress_matrix --full-refresh` (models
               only; `dbt seed` runs once before, untimed)
  (b) pyspark  sflux.bench.jobs "dataframe": the notebook, native functions
  (c) udf      sflux.bench.jobs "python_udf": the same with Python UDFs for
               hashing and masking (the anti-pattern, in sflux/bench/jobs.py)
  (d) sql      sflux.bench.jobs "sql": one Spark SQL query, raw -> matrix
  (e) csv      sflux.bench.jobs "landing_csv": the notebook of (b) reading the
               landing CSVs directly (no loader), as the case study ran; it
               is compared with load + (a), end to end

The matrices of (a), (b), (d), (e) (and (c) when run) must agree within 1e-9
before any time is reported. Then one more day is generated and loaded and
the same dbt command runs without --full-refresh (the incremental run).

After the sizes, the 30-day scenario (issue 13): --size-30-days readings
(default 5M) over 30 days, (a) full build, then day 31 generated and loaded,
then (a) without --full-refresh; the ratio incremental / full is reported, and
the matrix after it must equal (d)'s on the 31 days.

Writes bench/benchmark.json and bench/benchmark.png, with every target of
issue 13, section 1 (goal, measured figure, met or missed).

Example: .venv/bin/python scripts/benchmark.py --sizes 1000000,5000000
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sflux.bench import runner
from sflux.bench.runner import READINGS_PER_USER_DAY, REPO


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(float(s)) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of row counts: {text!r}") from None
    if not sizes or min(sizes) < 10_000:
        raise argparse.ArgumentTypeError("sizes must be at least 10000 rows each")
    return sizes


def parse_size(text: str) -> int:
    sizes = parse_sizes(text)
    if len(sizes) != 1:
        raise argparse.ArgumentTypeError(f"one row count, not a list: {text!r}")
    return sizes[0]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="benchmark.py",
        description=__doc__.split("\n\n")[0] + " See the top of scripts/benchmark.py for the protocol.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--sizes", type=parse_sizes, default="1000000,5000000,20000000",
                   help="comma-separated target numbers of vitals readings; users are chosen "
                        f"as size / (days x {READINGS_PER_USER_DAY}) readings per user-day")
    p.add_argument("--out", type=Path, default=REPO / "bench",
                   help="output folder (gitignored): benchmark.json, benchmark.png, logs, and "
                        "the landing files and warehouse of each size under work/")
    p.add_argument("--days", type=int, default=7, help="days of readings per size")
    p.add_argument("--seed", type=int, default=42, help="generator seed")
    p.add_argument("--skip-udf", action="store_true",
                   help="do not run variant (c), the Python-UDF job (slowest by far)")
    p.add_argument("--skip-incremental", action="store_true",
                   help="do not time the incremental one-day dbt run of each size (the 30-day "
                        "scenario has its own flag)")
    p.add_argument("--skip-30-days", dest="skip_scenario", action="store_true",
                   help="do not run the 30-day scenario (one new day on 30 days of history, "
                        "incremental vs full build)")
    p.add_argument("--size-30-days", dest="scenario_size", type=parse_size, default=5_000_000, metavar="N",
                   help="target number of readings over the 30 days of the 30-day scenario")
    p.add_argument("--repeat", type=int, default=1,
                   help="runs of each variant per size; the fastest run is reported")
    p.add_argument("--keep-data", action="store_true",
                   help="keep each size's landing files and warehouse (default: deleted "
                        "after the size is done, they take ~100 bytes per reading)")
    p.add_argument("--report-only", type=Path, metavar="JSON",
                   help="run nothing: print the table and targets of an earlier benchmark.json "
                        "and redraw its chart into --out")
    p.add_argument("--loader-only", action="store_true",
                   help="per size, only generate and load (time the loader, rows/s and the "
                        "machine's load average); no dbt, no variants; writes loader.json")
    p.add_argument("--cores", default=os.environ.get("SANTEFLUX_SPARK_CORES", "*"),
                   help="Spark local cores (SANTEFLUX_SPARK_CORES) for every variant")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if args.repeat < 1 or args.days < 1:
        raise SystemExit("benchmark.py: error: --repeat and --days must be at least 1")
    return runner.run_benchmark(args, argv)


if __name__ == "__main__":
    sys.exit(main())
