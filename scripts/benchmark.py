#!/usr/bin/env python3
"""Benchmark: the dbt build of the vitals pipeline against the case-study
notebook as a PySpark DataFrame job, the same job with Python UDFs (seed 001)
and a one-query Spark SQL lower bound (issue 5, section 2).

For each size: generate landing files, load them once into a fresh data dir
(the loader's CSV->parquet time is reported on its own line), then run every
variant from that same raw zone, each in a fresh JVM with the session confs of
profiles/profiles.yml (target `local`), in the order a, b, c, d:

  (a) dbt      `dbt run --select +fct_city_stress_matrix --full-refresh` (models
               only; `dbt seed` runs once before, untimed)
  (b) pyspark  sflux.bench.jobs "dataframe": the notebook, native functions
  (c) udf      sflux.bench.jobs "python_udf": the same with Python UDFs for
               hashing and masking (the anti-pattern, in sflux/bench/jobs.py)
  (d) sql      sflux.bench.jobs "sql": one Spark SQL query, raw -> matrix

The matrices of (a), (b), (d) (and (c) when run) must agree within 1e-9
before any time is reported. Then one more day is generated and loaded and
the same dbt command runs without --full-refresh (the incremental run).
Writes bench/benchmark.json and bench/benchmark.png.

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
                   help="do not time the incremental one-day dbt run")
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
