#!/usr/bin/env python3
"""Scan a warehouse schema (default: the restricted `raw` zone) for PII and
check that every column holding some has a declared treatment in dbt.

Exit codes: 0 every column with a finding is declared; 1 some column holds
PII without a declared treatment (or an unexpected failure); 2 bad usage or
a problem the user can fix (missing schema, unreadable manifest...).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from sflux.core import dbt_cli, paths
from sflux.core.errors import UserError
from sflux.privacy.pii_detect import DEFAULT_MIN_SHARE, DEFAULT_SAMPLE_ROWS, Report, scan

PROG = "detect_pii"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError("must be in (0, 1]")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Scan every table of a schema for personal data, by column name and by\n"
            "value patterns on a deterministic sample (email, phone, IP, EU national\n"
            "ids, IBAN, Luhn-valid cards, birth dates, postcodes, names, street\n"
            "addresses, user/device ids, quasi-identifiers), classify each finding\n"
            "HIGH / MEDIUM / LOW, and check it against the `treatment` declared in\n"
            "the column's `meta` in the dbt manifest. Undeclared columns get a\n"
            "proposed `meta` snippet. Rules: scripts/sflux/privacy/pii_rules.py."
        ),
        epilog=(
            "exit codes: 0 every column with a finding is declared; 1 a column holds\n"
            "PII without a declared treatment (each one is named), or an unexpected\n"
            "failure; 2 bad usage or a fixable problem (e.g. the schema is missing)."
        ),
    )
    parser.add_argument("--schema", default="raw", help="schema to scan (default: raw)")
    parser.add_argument(
        "--sample-rows",
        type=_positive_int,
        default=DEFAULT_SAMPLE_ROWS,
        metavar="N",
        help=f"rows sampled per table, deterministically (default: {DEFAULT_SAMPLE_ROWS})",
    )
    parser.add_argument(
        "--min-share",
        type=_share,
        default=DEFAULT_MIN_SHARE,
        metavar="F",
        help="share of a column's non-NULL sampled values that must match a type "
        f"for it to be detected by values (default: {DEFAULT_MIN_SHARE})",
    )
    parser.add_argument(
        "--manifest",
        type=Path,
        metavar="PATH",
        help="dbt manifest.json holding the declared policies (default: "
        "$DBT_TARGET_PATH/manifest.json, else target/manifest.json; when that is "
        "missing, `dbt parse` writes it first)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the findings as JSON")
    return parser


def _one_line(text: str) -> str:
    return " ".join(text.split())


def run(args: argparse.Namespace, spark=None) -> int:
    """Scan with ``spark`` (or a session of its own), print, return the exit code."""
    if args.manifest is None:
        args.manifest = dbt_cli.default_manifest()
        if not args.manifest.exists():
            dbt_cli.parse_project(args.manifest)
    if spark is None:
        # profiles.yml falls back to $PWD; paths.py to the repo: make them agree.
        os.environ.setdefault("SANTEFLUX_HOME", str(paths.home()))
        from sflux.core.spark import get_spark

        spark = get_spark()
    report: Report = scan(spark, args.schema, args.manifest, args.sample_rows, args.min_share)
    for line in report.format_lines():
        print(f"{PROG}: {line}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    if report.ok:
        return 0
    names = ", ".join(f"{args.schema}.{f.table}.{f.column}" for f in report.undeclared())
    print(f"{PROG}: error: PII without a declared treatment: {names}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None, spark=None) -> int:
    """CLI entry point; tests pass their own Spark session."""
    args = build_parser().parse_args(argv)
    try:
        return run(args, spark)
    except UserError as exc:
        print(f"{PROG}: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, not a JVM stack dump
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        print(f"{PROG}: error: unexpected failure: {type(exc).__name__}: {first}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
