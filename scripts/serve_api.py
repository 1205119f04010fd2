#!/usr/bin/env python3
"""Serve the governed, read-only API over the analytics marts (make serve).

Reads the marts' parquet files directly (no Spark, no metastore, no key);
answers only bearer tokens issued with scripts/api_tokens.py; audits every
request to the audit log. OpenAPI docs at http://HOST:PORT/docs.

Paths come from the environment (defaults in brackets):
  SANTEFLUX_API_ANALYTICS_DIR  marts [$SANTEFLUX_DATA_DIR/warehouse/analytics.db]
  SANTEFLUX_API_TOKENS         token store [$SANTEFLUX_HOME/.secrets/api/tokens.json]
  SANTEFLUX_API_AUDIT          audit log [$SANTEFLUX_HOME/.secrets/api/audit.jsonl]
  SANTEFLUX_PERSONAS           personas [conf/personas.yml]

It refuses to start while DBT_ENV_SECRET_PSEUDONYM_KEY is in its environment:
the process that serves analysts must never hold the key.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys

from sflux.api.errors import ConfigError
from sflux.api.settings import KEY_ENV, Settings


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Example: serve_api.py --port 8000; then curl -H 'Authorization: Bearer sfx_...' "
        "http://127.0.0.1:8000/v1/matrix",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host; the API speaks plain HTTP, so put a TLS proxy in front first",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if KEY_ENV in os.environ:
        print(
            f"serve_api: error: {KEY_ENV} is set; the API must never hold the pseudonymization key: "
            f"unset it (make serve does) and retry",
            file=sys.stderr,
        )
        return 2
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == "localhost"
    if not loopback and not args.allow_remote:
        print(f"serve_api: error: --host {args.host} is reachable from other machines; "
              "tokens travel in clear over HTTP: add --allow-remote behind a TLS proxy", file=sys.stderr)
        return 2
    if not 1 <= args.port <= 65535:
        print(f"serve_api: error: --port must be from 1 to 65535 (got {args.port})", file=sys.stderr)
        return 2

    try:
        settings = Settings.from_env()
        from sflux.api.app import create_app

        app = create_app(settings)
    except ConfigError as exc:
        print(f"serve_api: error: {exc}", file=sys.stderr)
        return 2

    import uvicorn

    print(f"serve_api: marts {settings.analytics_dir}; audit {settings.audit_file}; "
          f"docs http://{args.host}:{args.port}/docs", flush=True)
    # One worker: the marts are cached in memory per process, and two cores
    # are shared with the pipeline. The audit log replaces the access log.
    uvicorn.run(app, host=args.host, port=args.port, loop="uvloop", http="httptools",
                access_log=False, log_level="warning", workers=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
