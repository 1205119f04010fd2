#!/usr/bin/env python3
"""Manage the governed API's bearer tokens (the DPO's job): issue, revoke, list.

`issue` prints the new token once, on stdout; the store keeps only its SHA-256.
Every act (issue, revoke, list) is appended to the API audit log, with the
token's id and never the token. Exit code 2 on a usage error.

Paths come from SANTEFLUX_API_TOKENS [$SANTEFLUX_HOME/.secrets/api/tokens.json],
SANTEFLUX_API_AUDIT [.../audit.jsonl] and SANTEFLUX_PERSONAS [conf/personas.yml].
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import datetime, timezone

from sflux.api.audit import AuditLog
from sflux.api.errors import ConfigError
from sflux.api.personas import load_personas
from sflux.api.settings import Settings
from sflux.api.tokens import MAX_VALIDITY_DAYS, issue_token, read_store, revoke_token


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    issue = commands.add_parser("issue", help="issue a token and print it once")
    issue.add_argument("--persona", required=True, help="a persona of conf/personas.yml (analyst, tenant, ...)")
    issue.add_argument("--tenant", help="the tenant id; required for a tenant-scoped persona, refused otherwise")
    issue.add_argument(
        "--days", type=int, default=30, help=f"validity in days, 1 to {MAX_VALIDITY_DAYS} (default 30)"
    )
    issue.add_argument("--note", default="", help="who or what the token is for, kept in the store and the audit")

    revoke = commands.add_parser("revoke", help="revoke a token by its id (see list)")
    revoke.add_argument("token_id", help="the 12-hex-digit id printed by issue and list")

    commands.add_parser("list", help="list tokens: id, persona, tenant, expiry, state (never the token)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    actor = getpass.getuser()
    try:
        settings = Settings.from_env()
        audit = AuditLog(settings.audit_file)
        if args.command == "issue":
            personas = load_personas(settings.personas_file)
            token, record = issue_token(
                settings.tokens_file, personas, args.persona, args.tenant, args.days, actor, args.note
            )
            audit.write("token_issued", by=actor, token_id=record.token_id, persona=record.persona,
                        tenant=record.tenant, expires_at=record.expires_at, note=record.note)
            print(f"token id {record.token_id}: persona {record.persona}"
                  f"{', tenant ' + record.tenant if record.tenant else ''}, expires {record.expires_at}",
                  file=sys.stderr)
            print("the token is shown once and stored only as a hash; keep it secret:", file=sys.stderr)
            print(token)
        elif args.command == "revoke":
            record = revoke_token(settings.tokens_file, args.token_id)
            audit.write("token_revoked", by=actor, token_id=record.token_id, persona=record.persona,
                        tenant=record.tenant)
            print(f"revoked token {record.token_id} ({record.persona}) at {record.revoked_at}")
        else:
            records = read_store(settings.tokens_file)
            audit.write("tokens_listed", by=actor, count=len(records))
            now = datetime.now(timezone.utc)
            print(f"{'token_id':12}  {'persona':14}  {'tenant':16}  {'expires_at':25}  state  note")
            for r in records:
                state = "revoked" if r.revoked_at else "expired" if r.expired(now) else "active"
                print(f"{r.token_id:12}  {r.persona:14}  {r.tenant or '-':16}  {r.expires_at:25}  {state:6} {r.note}")
    except ConfigError as exc:
        print(f"api_tokens: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
