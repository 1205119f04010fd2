"""The cluster CLI's commands (scripts/spark_cluster.py): start unless it is
already up, and a status report that probes the Thrift server."""

from __future__ import annotations

import time

from sflux.cluster.processes import HOST, ProbeError, probe, tagged_pids
from sflux.cluster.standalone import Options, read_state, running, start
from sflux.core.errors import UserError


def ensure_started(opts: Options, say) -> int:
    state = read_state(opts)
    if state:
        live = running(state)
        if live and len(live) == len(state["processes"]):
            ok, detail = probe_answers(state["thrift_port"], 30)
            if ok:
                say(f"already running: Thrift server on {HOST}:{state['thrift_port']} "
                    f"(data dir {state['data_dir']})")
                return 0
            raise UserError(f"already started but the Thrift server does not answer ({detail}): "
                            "run `spark_py stop` first")
        if live:
            raise UserError(f"partly running ({', '.join(p['name'] for p in live)} alive): "
                            "run `spark_py stop` first")
    strays = tagged_pids(opts.run_dir)
    if strays:
        raise UserError(f"leftover cluster processes {strays} for this data dir: "
                        "run `spark_py stop` first")
    t0 = time.monotonic()
    state = start(opts)
    port = state["thrift_port"]
    say(f"ready in {time.monotonic() - t0:.0f}s: Thrift server on {HOST}:{port}, "
        f"master {state['master_url']}, data dir {state['data_dir']}")
    say("build with:  SANTEFLUX_TARGET=thrift "
        + ("" if port == 10000 else f"SANTEFLUX_THRIFT_PORT={port} ")
        + "DBT_PROFILES_DIR=profiles dbt build")
    say(f"stop with:   scripts/spark_py stop --data-dir {state['data_dir']}")
    return 0


def probe_answers(port: int, timeout: float) -> tuple[bool, str]:
    try:
        return probe(port, timeout=timeout)
    except ProbeError as exc:
        return False, str(exc)


def status(opts: Options, timeout: float) -> int:
    state = read_state(opts)
    strays = tagged_pids(opts.run_dir)
    if not state:
        if strays:
            print(f"not running (no state file), but leftover processes {strays}: run stop")
        else:
            print(f"not running (data dir {opts.data_dir})")
        return 3
    live = {p["pid"] for p in running(state)}
    print(f"data dir {state['data_dir']}, master {state['master_url']}, started {state['started_at']}")
    for proc in state["processes"]:
        word = "running" if proc["pid"] in live else "NOT running"
        print(f"  {proc['name']:<10} pid {proc['pid']:<8} {word}  log {proc['log']}")
    ok, detail = probe_answers(state["thrift_port"], timeout)
    print(f"thrift server {HOST}:{state['thrift_port']}: " + ("answers" if ok else f"does not answer ({detail})"))
    return 0 if ok and len(live) == len(state["processes"]) else 3
