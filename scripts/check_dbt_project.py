#!/usr/bin/env python3
"""Check the dbt graph against the project's rules: every model described and
with a primary-key test, every source with freshness, staging models reading
only their own source (plus models declared joinable), layer prefixes on
intermediate and mart names. Rules:
scripts/sflux/conventions/dbt_project.py.

Exit codes: 0 no violation; 1 violations, one line each; 2 bad usage or a
problem the user can fix (the project does not parse, unreadable manifest).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from sflux.core import paths
from sflux.conventions.dbt_project import check, load_manifest
from sflux.core.errors import UserError

PROG = "check_dbt_project"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\nExit codes")[0],
        epilog=(
            "exit codes: 0 no violation; 1 violations (one line each: resource,\n"
            "what is wrong, [rule]); 2 bad usage or a fixable problem."
        ),
    )
    parser.add_argument(
        "--manifest",
        type=Path,
        metavar="PATH",
        help="check this manifest.json instead of running `dbt parse` (which needs no "
        "warehouse and writes to a temporary directory, so the check always sees the "
        "current project)",
    )
    return parser


def parsed_manifest(target_dir: Path) -> Path:
    """Run `dbt parse` in-process into `target_dir`; the manifest's path."""
    from dbt.cli.main import dbtRunner

    os.environ.setdefault("DBT_PROFILES_DIR", str(paths.REPO_ROOT / "profiles"))
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    result = dbtRunner().invoke([
        "parse", "--quiet", "--project-dir", str(paths.REPO_ROOT), "--target-path", str(target_dir)])
    manifest = target_dir / "manifest.json"
    if not result.success or not manifest.exists():
        raise UserError(f"`dbt parse` failed ({result.exception or 'see its output'}); fix the project first")
    return manifest


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.manifest is not None:
            manifest = load_manifest(args.manifest)
        else:
            with tempfile.TemporaryDirectory(prefix="santeflux-check-") as target:
                manifest = load_manifest(parsed_manifest(Path(target)))
    except UserError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    violations = check(manifest)
    for violation in violations:
        print(violation.line())
    n_models = sum(1 for n in manifest["nodes"].values() if n.get("resource_type") == "model")
    summary = f"{n_models} models, {len(manifest['sources'])} sources"
    if violations:
        print(f"{PROG}: {len(violations)} violation(s) in {summary}", file=sys.stderr)
        return 1
    print(f"{PROG}: ok ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
