#!/usr/bin/env python3
"""Load-test the governed API (make bench-api): bounded, stops by itself.

Starts scripts/serve_api.py on a free 127.0.0.1 port over the built marts
($SANTEFLUX_DATA_DIR/warehouse/analytics.db), with a throwaway analyst token
and audit log in a temporary directory (the DPO's store is not touched).
Then, per endpoint, N concurrent keep-alive clients send requests for a fixed
time; it prints p50/p95/p99 latency, throughput and errors, checks that every
request was audited, and stops the server. Target (issue 12): p95 < 50 ms for
the matrix at 50 clients on 2 cores, no errors. Exit 1 on errors or an
unaudited request; a missed latency target is reported, not an error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from sflux.api import bench
from sflux.api.personas import load_personas
from sflux.api.settings import KEY_ENV, Settings
from sflux.api.tokens import issue_token

SCRIPTS = Path(__file__).resolve().parent
TARGET_P95_MS = 50.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent connections (default 50)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration per endpoint (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="untimed warm-up per endpoint, seconds (default 2)")
    parser.add_argument(
        "--endpoints", default="matrix,trend,time-range", help="comma-separated: matrix, trend, time-range"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 500 or not 0 < args.seconds <= 300 or not 0 <= args.warmup <= 60:
        parser.error("--clients 1..500, --seconds (0, 300], --warmup [0, 60]")
    return args


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_ready(base: str, server: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"bench_api: error: the server exited (code {server.returncode}); see its output above")
        try:
            status, body = get(f"{base}/health")
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
            continue
        if status == 200:
            return
        raise SystemExit(f"bench_api: error: marts not ready ({body.decode()}): run `make demo` or `make build` first")
    raise SystemExit(f"bench_api: error: the server did not answer within {timeout:.0f} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc): what a
    request costs the server, whatever else the machine is running."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings.from_env()
    work = Path(tempfile.mkdtemp(prefix="santeflux-bench-api-"))
    tokens, audit = work / "tokens.json", work / "audit.jsonl"
    token, _ = issue_token(tokens, load_personas(settings.personas_file), "analyst", None, 1, "bench_api")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    env.update(SANTEFLUX_API_ANALYTICS_DIR=str(settings.analytics_dir),
               SANTEFLUX_API_TOKENS=str(tokens), SANTEFLUX_API_AUDIT=str(audit))
    server = subprocess.Popen([sys.executable, str(SCRIPTS / "serve_api.py"), "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    failed = False
    try:
        wait_ready(base, server)
        status, body = get(f"{base}/v1/matrix", token)
        city = json.loads(body)["cities"][0]["city"] if status == 200 and json.loads(body)["cities"] else "Lyon"
        paths = {
            "matrix": "/v1/matrix",
            "trend": "/v1/trend?" + urllib.parse.urlencode({"city": city}),
            "time-range": "/v1/time-range",
        }
        chosen = [e.strip() for e in args.endpoints.split(",") if e.strip()]
        unknown = [e for e in chosen if e not in paths]
        if unknown:
            print(f"bench_api: error: unknown endpoint(s) {unknown}; endpoints: {', '.join(paths)}", file=sys.stderr)
            return 2
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=SCRIPTS, capture_output=True,
                                text=True).stdout.strip() or "unknown"
        print(f"bench_api: {args.clients} clients x {args.seconds:g} s per endpoint against {base}; "
              f"commit {commit}; {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
        sent = 2  # the health check and the matrix read above
        for name in chosen:
            if args.warmup:
                warm = bench.run("127.0.0.1", port, paths[name], token, args.clients, args.warmup)
                sent += warm.requests
            cpu_before, own_before = cpu_seconds(server.pid), time.process_time()
            result = bench.run("127.0.0.1", port, paths[name], token, args.clients, args.seconds)
            server_ms = (cpu_seconds(server.pid) - cpu_before) * 1000 / max(result.requests, 1)
            client_ms = (time.process_time() - own_before) * 1000 / max(result.requests, 1)
            sent += result.requests
            print(result.line(), flush=True)
            print(f"{'':40} CPU per request: server {server_ms:.3f} ms, load generator {client_ms:.3f} ms", flush=True)
            failed |= result.errors > 0
            if name == "matrix":
                verdict = "met" if result.percentile(95) < TARGET_P95_MS and result.errors == 0 else "MISSED"
                print(f"target p95 < {TARGET_P95_MS:g} ms with no errors at {args.clients} clients: {verdict}")
    finally:
        server.terminate()
        server.wait(timeout=10)
    audited = sum(1 for line in audit.read_text().splitlines() if json.loads(line)["event"] == "request")
    print(f"audited: {audited} of {sent} requests")
    failed |= audited != sent
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
