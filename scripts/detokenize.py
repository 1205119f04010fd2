#!/usr/bin/env python3
"""Look up the raw value behind a vault token: the only way back from the
anonymized zone to a tokenized value (e.g. a national id a DPO must verify).

Every call is audited in raw.privacy_audit_log (who, when, why, the token's
domain and the member's pseudonym), whether the token is found or not. The
value is printed to stdout only; it is never logged or stored. The key is
checked against raw.pseudonym_key_registry first, and a reason that holds
personal data is refused.

Example:
  DBT_ENV_SECRET_PSEUDONYM_KEY=$(cat .secrets/pseudonym.key) \\
    .venv/bin/python scripts/detokenize.py --token tok_0123... --reason "DPO request 2026-17"
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from sflux.core import paths
from sflux.core.errors import UserError

PROG = "detokenize"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Return the raw value behind a token from the restricted token "
        "vault, and record the lookup in raw.privacy_audit_log.",
        epilog="exit codes: 0 found; 1 token unknown or malformed, a wrong key, or a reason "
        "holding personal data (the attempt is audited); 2 usage error.",
    )
    parser.add_argument("--token", required=True, help="the token, 'tok_' + 32 hex characters")
    parser.add_argument("--reason", required=True,
                        help="why the value is needed, as a reference such as 'DPO request 2026-17'; "
                        "stored in the audit row, so one holding personal data (an id, the value, "
                        "an email, ...) is refused")
    parser.add_argument("--json", action="store_true",
                        help="print token, domain, value, subject pseudonym and audit id as JSON")
    return parser


def main(argv: list[str] | None = None, spark=None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("SANTEFLUX_HOME", str(paths.home()))
    from sflux.privacy import vault

    try:
        if spark is None:
            from sflux.core.spark import get_spark

            spark = get_spark()
        found = vault.detokenize(spark, args.token, args.reason)
    except UserError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({
            "token": found.token,
            "domain": found.domain,
            "value": found.value,
            "subject_pseudonym_id": found.subject_pseudonym_id,
            "audit_id": found.audit_id,
        }))
    else:
        print(found.value)
    return 0


if __name__ == "__main__":
    sys.exit(main())
