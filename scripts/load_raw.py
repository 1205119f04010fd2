#!/usr/bin/env python3
"""Load the landing files (CSV and JSON Lines) of one directory into the raw tables.

Exit codes: 0 loaded; 1 unexpected failure (nothing published, or the
previous tables restored); 2 bad input (wrong or missing file/header, nothing
touched) or bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sflux.core import paths
from sflux.core.errors import UserError
from sflux.ingest import contract

PROG = "load_raw"


def _datasets_help() -> str:
    lines = []
    for dataset in contract.DATASETS:
        optional = "" if dataset.required else " (optional)"
        shape = "header" if dataset.has_header else "JSON object per line, fields"
        lines.append(
            f"  {dataset.name}{optional}: {' or '.join(dataset.file_globs)} -> {dataset.table}\n"
            f"    {shape}: {','.join(dataset.header)}"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Load every dataset of the raw landing contract from a directory into\n"
            f"the `{contract.RAW_SCHEMA}` schema (parquet tables in the Hive metastore\n"
            "under $SANTEFLUX_DATA_DIR, default <repo>/.santeflux), using the\n"
            "embedded Spark session configured from profiles/profiles.yml."
        ),
        epilog=(
            "datasets (each one not marked optional needs at least one file; a CSV\n"
            "file's first line must be exactly the header, a UTF-8 BOM is allowed):\n"
            f"{_datasets_help()}\n\n"
            "Bad lines (wrong field count, bad quoting, malformed JSON, blank, missing\n"
            "or unparseable values, unknown tier or other listed value, a broken row\n"
            "rule, a duplicate user_id/event_id/consent event after its first\n"
            f"occurrence) go to {contract.QUARANTINE_TABLE} with file, line and reason.\n"
            f"Lines of subjects in {contract.ERASURE_REGISTER_TABLE} (GDPR erasure) are\n"
            "skipped and counted, never stored; that needs DBT_ENV_SECRET_PSEUDONYM_KEY.\n"
            "rows read = loaded + quarantined + skipped is checked before publishing.\n"
            "A file is identified by its name: reloading it replaces the rows it\n"
            "contributed before; rows of other files are kept. Quoted fields must not\n"
            "contain newlines.\n\n"
            "exit codes: 0 loaded; 2 bad input or usage (nothing published);\n"
            "1 unexpected failure (the previous tables are left as they were)."
        ),
    )
    parser.add_argument(
        "--input",
        required=True,
        metavar="DIR",
        type=Path,
        help="directory holding the landing files (see datasets below)",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="print nothing on success (errors are still printed to stderr)",
    )
    return parser


def _one_line(text: str) -> str:
    return " ".join(text.split("\n")).strip()


def _short(exc: BaseException) -> str:
    """One line for an unexpected error, without a JVM stack dump."""
    java = getattr(exc, "java_exception", None)
    text = ""
    if java is not None:
        try:
            text = str(java.toString())
        except Exception:  # the JVM may be gone
            text = ""
    text = (text or str(exc)).strip()
    first = text.splitlines()[0].strip() if text else ""
    if len(first) > 300:
        first = first[:300] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def say(message: str) -> None:
        if not args.quiet:
            print(f"{PROG}: {message}", flush=True)

    from sflux.ingest import loader, results  # no pyspark import: pre-flight stays fast

    try:
        plan = loader.preflight(args.input)
        for name, files in plan.files.items():
            say(f"{name}: {len(files)} file(s) in {plan.input_dir}")
        # profiles.yml falls back to $PWD; paths.py to the repo: make them agree.
        os.environ.setdefault("SANTEFLUX_HOME", str(paths.home()))
        from sflux.core.spark import get_spark

        spark = get_spark()
        result = loader.load_raw(spark, plan, log=say)
    except UserError as exc:
        print(f"{PROG}: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except loader.ReconciliationError as exc:
        print(f"{PROG}: error: {_one_line(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"{PROG}: error: unexpected failure: {_short(exc)}", file=sys.stderr)
        return 1
    for line in results.format_report(result):
        say(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
