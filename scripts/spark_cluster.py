#!/usr/bin/env python3
"""Start, stop or inspect a local Spark standalone cluster with a Thrift
server, for dbt's `thrift` target (profiles/profiles.yml).

Exit codes: 0 ok (status: the Thrift server answers); 1 failure; 2 bad usage
or a problem you can fix (port taken, key missing, ...); 3 (status only) not
running or not answering.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from sflux.cluster import control
from sflux.cluster import standalone as cluster
from sflux.core.errors import UserError

PROG = "spark_cluster"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Run a local Spark standalone cluster from the pip-installed pyspark:\n"
            "a master and N workers bound to 127.0.0.1, and a Spark Thrift Server\n"
            "(HiveServer2 protocol) submitted to that master. dbt's `thrift`\n"
            "target then builds the warehouse on it:\n"
            "  SANTEFLUX_TARGET=thrift SANTEFLUX_THRIFT_PORT=<port> dbt build\n\n"
            "The Thrift server holds the key, so it admits only the user\n"
            "$SANTEFLUX_THRIFT_USER (default pipeline) with the password in\n"
            "DBT_ENV_SECRET_THRIFT_PASSWORD (`make thrift-password`), checked against a\n"
            "salted hash that `start` writes; master, workers and Thrift server share\n"
            "a random RPC secret (spark.authenticate), so no other local client can\n"
            "submit work to them. Compiling the password check needs javac (a JDK 17).\n\n"
            "The Thrift server owns the Derby metastore under --data-dir (one JVM at a\n"
            "time): load raw data BEFORE `start`, with the same data dir:\n"
            "  SANTEFLUX_DATA_DIR=<data-dir> scripts/load_raw.py --input DIR\n\n"
            "Every process inherits DBT_ENV_SECRET_PSEUDONYM_KEY from this command's\n"
            "environment (the Thrift server and the executors read it at run time);\n"
            "`start` refuses to run without it or without the password. PIDs, ports,\n"
            "logs, the password hash and the RPC secret are kept, owner-only, under\n"
            "<data-dir>/spark-cluster/."
        ),
        epilog=(
            "commands:\n"
            "  start   start the cluster and wait until the Thrift server runs a query on\n"
            "          the executors; says so and exits 0 if it already runs\n"
            "  stop    SIGTERM every process group it started (Thrift server, workers with\n"
            "          their executors, master), wait, then SIGKILL; fine if nothing runs\n"
            "  status  list the processes and whether the Thrift server answers\n\n"
            "exit codes: 0 ok / up; 1 failure; 2 usage or fixable problem;\n"
            "3 (status) not running or not answering."
        ),
    )
    parser.add_argument("command", choices=("start", "stop", "status"), help="what to do")
    parser.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                        help="warehouse, Derby metastore, logs and state; default $SANTEFLUX_DATA_DIR "
                             f"if set, else <repo>/.santeflux/cluster (now: {cluster.default_data_dir()})")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="number of worker processes (default %(default)s)")
    parser.add_argument("--worker-cores", type=int, default=1, metavar="N",
                        help="cores each worker offers to executors (default %(default)s)")
    parser.add_argument("--worker-memory", default="1g", metavar="SIZE",
                        help="memory each worker offers, also the executor memory (default %(default)s)")
    parser.add_argument("--driver-memory", default="1g", metavar="SIZE",
                        help="heap of the Thrift server, the Spark driver (default %(default)s)")
    parser.add_argument("--master-port", type=int, default=int(os.environ.get("SANTEFLUX_MASTER_PORT", 7077)),
                        metavar="PORT", help="master RPC port on 127.0.0.1 (default $SANTEFLUX_MASTER_PORT "
                                             "or 7077: %(default)s); web UIs take free ports")
    parser.add_argument("--thrift-port", type=int, default=int(os.environ.get("SANTEFLUX_THRIFT_PORT", 10000)),
                        metavar="PORT", help="Thrift server port on 127.0.0.1 (default $SANTEFLUX_THRIFT_PORT "
                                             "or 10000: %(default)s), as in the `thrift` dbt target")
    parser.add_argument("--timeout", type=float, default=180, metavar="SECONDS",
                        help="start: how long to wait for the Thrift server to answer before "
                             "giving up and stopping everything; stop: grace period before "
                             "SIGKILL (capped at 30 s); status: probe timeout (capped at 30 s) "
                             "(default %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="print only errors (and status output)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def say(message: str) -> None:
        if not args.quiet:
            print(f"{PROG}: {message}", flush=True)

    data_dir = (args.data_dir or cluster.default_data_dir()).resolve()
    opts = cluster.Options(data_dir=data_dir, workers=args.workers, worker_cores=args.worker_cores,
                           worker_memory=args.worker_memory, driver_memory=args.driver_memory,
                           master_port=args.master_port, thrift_port=args.thrift_port,
                           timeout=args.timeout, log=say)
    def interrupted(signum, frame):  # `start` cleans up on SIGTERM as on Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        if args.command == "start":
            return control.ensure_started(opts, say)
        if args.command == "stop":
            cluster.stop(opts, grace=min(args.timeout, 30.0))
            return 0
        return control.status(opts, min(args.timeout, 30.0))
    except UserError as exc:
        print(f"{PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: error: interrupted (what was started has been stopped)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
