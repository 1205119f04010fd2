#!/usr/bin/env python3
"""GDPR operations for a DPO or an analytics engineer.

  export           --user-id U [--out DIR]  subject access bundle (Art. 15/20)
  erase            --user-id U              right to erasure (Art. 17)
  verify-erasure   --user-id U              exit 1 if anything of U is left, 3 if not all checked
  purge-expired    [--as-of DATE]           retention: drop rows and export bundles past their age

Relations holding subject data are discovered from dbt metadata
(`meta: subject_key` on sources and models, see scripts/sflux/gdpr/subject_data.py).
Every call is audited in raw.privacy_audit_log. Needs the pseudonymization key
in DBT_ENV_SECRET_PSEUDONYM_KEY (the Makefile passes .secrets/pseudonym.key),
checked against raw.pseudonym_key_registry before it is used. Export bundles
go under exports/ ($SANTEFLUX_EXPORTS_DIR; gitignored) and expire after 7 days.

Examples:
  .venv/bin/python scripts/gdpr.py export --user-id user_000042
  .venv/bin/python scripts/gdpr.py erase --user-id user_000042 --landing data/landing
  .venv/bin/python scripts/gdpr.py verify-erasure --user-id user_000042 --landing data/landing
  .venv/bin/python scripts/gdpr.py purge-expired --as-of 2027-03-01
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path
from typing import NoReturn

from sflux.core import dbt_cli, paths
from sflux.core.errors import UserError

PROG = "gdpr"


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=__doc__.split("\n\n")[0],
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           epilog="exit codes: 0 done; 1 subject not found, data left after an "
                           "erasure, or an incomplete erasure (rerun to finish); 2 bad input "
                           "or a wrong key; 3 verify-erasure found nothing but could not "
                           "check everything (it says what).")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    landing_help = ("landing directory under management, scanned and cleaned too (repeatable; "
                    "default: $SANTEFLUX_LANDING_DIRS, separated by ':')")

    export = commands.add_parser("export", help="write everything held about a subject as JSON")
    export.add_argument("--user-id", required=True, help="the subject's raw user id, e.g. user_000042")
    export.add_argument("--out", type=Path,
                        help="directory for the bundle, inside the exports directory "
                        "($SANTEFLUX_EXPORTS_DIR, default <repo>/exports; gitignored); default: a new "
                        "directory there named by date and pseudonym prefix. The bundle expires after "
                        "7 days (purge-expired removes it) and an erasure of the subject removes it")

    erase = commands.add_parser("erase", help="erase a subject everywhere and rebuild aggregates")
    erase.add_argument("--user-id", required=True, help="the subject's raw user id")
    erase.add_argument("--landing", action="append", type=Path, help=landing_help)
    erase.add_argument("--no-rebuild", action="store_true",
                       help="skip the dbt build that recomputes aggregates (run it yourself)")

    verify = commands.add_parser("verify-erasure", help="exit 1 if the subject is found anywhere")
    verify.add_argument("--user-id", required=True, help="the subject's raw user id")
    verify.add_argument("--landing", action="append", type=Path, help=landing_help)

    purge = commands.add_parser("purge-expired", help="remove rows older than their retention")
    purge.add_argument("--as-of", type=date.fromisoformat, default=date.today(),
                       help="reference date, YYYY-MM-DD (default: today, UTC)")
    return parser


def main(argv: list[str] | None = None, spark=None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("SANTEFLUX_HOME", str(paths.home()))
    from sflux.gdpr import erasure
    from sflux.gdpr import subject_rights as gdpr

    def say(message: str) -> None:
        print(f"{PROG}: {message}", flush=True)

    try:
        gdpr.require_key()
        if spark is None:
            from sflux.core.spark import get_spark

            spark = get_spark()
        if args.command != "purge-expired":
            try:
                gdpr.validate_user_id(args.user_id)
            except UserError:
                from sflux.privacy import audit

                audit.record(spark, args.command.replace("-", "_"), status="rejected_invalid_id")
                raise
        if args.command == "export":
            manifest = gdpr.export(spark, args.user_id, args.out)
            out = Path(manifest["directory"])
            for item in manifest["files"]:
                say(f"{item['relation']}: {item['rows']} row(s) -> {out / item['file']}")
            say(f"bundle written: {out / 'manifest.json'} (expires {manifest['expires_at']}: "
                "hand it over, then delete it)")
        elif args.command == "erase":
            removed = erasure.erase(spark, args.user_id, args.landing,
                                    rebuild=(lambda: None) if args.no_rebuild else dbt_cli.build, log=say)
            say(f"erased: {sum(removed.values())} row(s)/line(s)/file(s) removed from {len(removed)} place(s)")
        elif args.command == "verify-erasure":
            scan = erasure.verify_erasure(spark, args.user_id, args.landing)
            for where, n in scan.found.items():
                say(f"FOUND {n} occurrence(s) in {where}")
            for what in scan.unchecked:
                say(f"NOT CHECKED: {what}")
            if scan.found:
                return 1
            if scan.unchecked:
                say("nothing found in what was checked, but the check is incomplete (see NOT CHECKED)")
                return 3
            say("nothing of the subject found in any relation, managed landing file or export bundle")
        else:
            removed = gdpr.purge_expired(spark, args.as_of, log=say)
            say(f"purged {sum(removed.values())} row(s) from {len(removed)} relation(s)")
    except gdpr.SubjectNotFound as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except erasure.ErasureIncomplete as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except UserError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
