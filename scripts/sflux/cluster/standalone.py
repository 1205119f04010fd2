"""A local Spark standalone cluster (master, workers, Thrift server) started
from the pip-installed pyspark, for running dbt's `thrift` target.

Every JVM is started in its own session (so its process group can be
signalled as a whole) and tagged with ``-Dsanteflux.cluster=<run dir>`` so
that `stop` can also find a JVM whose recorded PID was lost (an executor the
worker forked, say). The pseudonymization key reaches Spark only through the
environment that every process inherits from the caller: never through a
conf, an argument or a file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from sflux.cluster.processes import (
    HOST,
    KEY_ENV,
    MASTER_CLASS,
    ProbeError,
    RUN_SUBDIR,
    STATE_FILE,
    TAG_PROPERTY,
    THRIFT_CLASS,
    WORKER_CLASS,
    free_port,
    port_free,
    probe,
    process_alive,
    stop_processes,
    tagged_pids,
)
from sflux.cluster import auth
from sflux.core import paths, storage
from sflux.core.errors import UserError
from sflux.privacy import keys


def spark_home() -> Path:
    import pyspark  # only to locate the package; no JVM is started here

    return Path(pyspark.__file__).resolve().parent


def default_data_dir() -> Path:
    """$SANTEFLUX_DATA_DIR when set, else <home>/.santeflux/cluster (kept
    apart from the embedded target's warehouse: Derby admits one JVM)."""
    if os.environ.get("SANTEFLUX_DATA_DIR"):
        return paths.data_dir()
    return paths.home() / ".santeflux" / "cluster"


@dataclass
class Options:
    data_dir: Path
    workers: int = 1
    worker_cores: int = 1
    worker_memory: str = "1g"
    driver_memory: str = "1g"
    master_port: int = 7077
    thrift_port: int = 10000
    timeout: float = 180.0
    log: Callable[[str], None] = field(default=print)

    @property
    def run_dir(self) -> Path:
        return self.data_dir / RUN_SUBDIR

    @property
    def state_file(self) -> Path:
        return self.run_dir / STATE_FILE


# ---- state ---------------------------------------------------------------

def read_state(opts: Options) -> dict | None:
    try:
        return json.loads(opts.state_file.read_text())
    except (OSError, ValueError):
        return None


def write_state(opts: Options, state: dict) -> None:
    opts.run_dir.mkdir(parents=True, exist_ok=True)
    tmp = opts.state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(opts.state_file)


def running(state: dict) -> list[dict]:
    return [p for p in state.get("processes", []) if process_alive(p["pid"], p.get("marker"))]


# ---- start ---------------------------------------------------------------

def _base_env(opts: Options, java_opts: str) -> dict[str, str]:
    env = dict(os.environ)  # carries the key: the executors inherit it from the worker
    env.pop(auth.PASSWORD_ENV, None)  # the server checks a hash; no JVM needs the password
    env.update({
        "SPARK_HOME": str(spark_home()),
        "SPARK_LOCAL_IP": HOST,
        "SPARK_LOCAL_DIRS": str(opts.data_dir / "tmp"),
        "SPARK_CONF_DIR": str(opts.run_dir / "conf"),  # empty: no stray spark-defaults
        "SPARK_DAEMON_JAVA_OPTS": java_opts,
        "SPARK_NO_DAEMONIZE": "1",
    })
    env.pop("PYSPARK_SUBMIT_ARGS", None)
    env.pop("SPARK_MASTER_HOST", None)
    return env


def _launch(name: str, cmd: list[str], env: dict, opts: Options, marker: str) -> dict:
    log_path = opts.run_dir / "logs" / f"{name}.log"
    with open(log_path, "ab") as out:
        out.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}\n".encode())
        out.flush()
        proc = subprocess.Popen(cmd, env=env, cwd=str(opts.run_dir), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return {"name": name, "pid": proc.pid, "pgid": proc.pid, "marker": marker, "log": str(log_path)}


def _tail(path: str, lines: int = 200) -> list[str]:
    try:
        return Path(path).read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def _first_error(path: str) -> str:
    """The most telling line of a failed JVM's log."""
    tail = _tail(path)
    if any(line.startswith("Usage:") for line in tail):
        return "invalid arguments (its usage text is in the log)"
    for needle in ("another instance of Derby", "XSDB6", "Address already in use", "BindException",
                   "OutOfMemory", "Exception", "Error", "error"):
        for line in tail:
            if needle in line:
                return line.strip()[:300]
    return tail[-1].strip()[:300] if tail else "no output"


def check_ports(opts: Options, extra: dict[str, int]) -> None:
    wanted = {"master": opts.master_port, "thrift": opts.thrift_port, **extra}
    if len(set(wanted.values())) != len(wanted):
        raise UserError(f"ports must differ: {wanted}")
    for role, port in wanted.items():
        if not port_free(port):
            raise UserError(f"port {port} ({role}) on {HOST} is already in use: stop what uses it "
                            f"or choose another with --{role}-port")


def _wait_master(opts: Options, master: dict, deadline: float) -> None:
    while time.monotonic() < deadline:
        if not process_alive(master["pid"]):
            raise UserError(f"the master exited: {_first_error(master['log'])} (log: {master['log']})")
        if not port_free(opts.master_port):
            return
        time.sleep(0.5)
    raise UserError(f"the master did not listen on port {opts.master_port} within --timeout")


def start(opts: Options) -> dict:
    """Start master, workers and Thrift server; wait until it answers."""
    if not os.environ.get(KEY_ENV):
        raise UserError(f"{KEY_ENV} is not set: the Thrift server and executors read the "
                        "pseudonymization key from their environment (e.g. export it from "
                        ".secrets/pseudonym.key, created by `make key`)")
    # Before any JVM: a wrong key would pseudonymize everything it builds
    # under a key the registry does not know.
    keys.require_registered_key_files(opts.data_dir.resolve() / "warehouse",
                                      "start the cluster that builds with it")
    if opts.workers < 1 or opts.worker_cores < 1:
        raise UserError("--workers and --worker-cores must be at least 1")
    for flag, size in (("--worker-memory", opts.worker_memory), ("--driver-memory", opts.driver_memory)):
        if not re.fullmatch(r"[1-9][0-9]*[kKmMgGtT]?", size):
            raise UserError(f"{flag} {size!r} is not a size such as 512m or 2g")
    for flag, port in (("--master-port", opts.master_port), ("--thrift-port", opts.thrift_port)):
        if not 1024 <= port <= 65535:
            raise UserError(f"{flag} {port} is not a port in 1024-65535")
    from sflux.core.spark import require_java

    require_java()
    home = spark_home()
    if not (home / "bin" / "spark-class").exists():
        raise UserError(f"no bin/spark-class in the pyspark package at {home}")

    user, password = auth.thrift_user(), auth.password_from_env()
    data = opts.data_dir.resolve()
    opts.data_dir = data
    run = opts.run_dir
    # The JVMs inherit the umask; what an older run left open is closed.
    storage.private_umask()
    for sub in (run / "logs", run / "conf", data / "warehouse", data / "tmp"):
        sub.mkdir(parents=True, exist_ok=True)
    storage.restrict(data)
    classes = auth.compile_authenticator(home, run / "auth")
    auth.write_password_file(run / "auth" / "thrift.passwd", user, password)
    auth.write_rpc_secret(run / "conf")

    ui_ports = {"master-webui": free_port(), **{f"worker-{i}-webui": free_port() for i in range(1, opts.workers + 1)}}
    check_ports(opts, {})

    log4j = paths.home() / "conf" / "log4j2.properties"
    tag = f"-D{TAG_PROPERTY}={run}"
    jvm_opts = f"{tag} -Dlog4j2.configurationFile=file:{log4j}"
    env = _base_env(opts, jvm_opts)
    spark_class = str(home / "bin" / "spark-class")
    master_url = f"spark://{HOST}:{opts.master_port}"

    state = {"data_dir": str(data), "run_dir": str(run), "master_url": master_url,
             "master_port": opts.master_port, "thrift_port": opts.thrift_port,
             "ui_ports": ui_ports, "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "processes": []}
    t0 = time.monotonic()
    deadline = t0 + opts.timeout
    try:
        master = _launch("master", [spark_class, MASTER_CLASS, "--host", HOST, "--port", str(opts.master_port),
                                    "--webui-port", str(ui_ports["master-webui"])], env, opts, MASTER_CLASS)
        state["processes"].append(master)
        write_state(opts, state)
        opts.log(f"master {master_url} (pid {master['pid']})")
        _wait_master(opts, master, deadline)

        for i in range(1, opts.workers + 1):
            work_dir = run / f"worker-{i}"
            work_dir.mkdir(exist_ok=True)
            worker = _launch(f"worker-{i}", [
                spark_class, WORKER_CLASS, "--host", HOST, "--cores", str(opts.worker_cores),
                "--memory", opts.worker_memory, "--work-dir", str(work_dir),
                "--webui-port", str(ui_ports[f"worker-{i}-webui"]), master_url], env, opts, WORKER_CLASS)
            state["processes"].append(worker)
            write_state(opts, state)
            opts.log(f"worker-{i}: {opts.worker_cores} core(s), {opts.worker_memory} (pid {worker['pid']})")

        thrift = _launch("thrift", _thrift_command(opts, home, master_url, tag, log4j, classes),
                         env, opts, THRIFT_CLASS)
        state["processes"].append(thrift)
        write_state(opts, state)
        opts.log(f"thrift server on {HOST}:{opts.thrift_port} (pid {thrift['pid']}); waiting for it to answer")

        detail = ""
        while time.monotonic() < deadline:
            for proc in state["processes"]:
                if not process_alive(proc["pid"]):
                    raise UserError(f"{proc['name']} exited during startup: {_first_error(proc['log'])} "
                                    f"(log: {proc['log']})")
            if not port_free(opts.thrift_port):
                try:
                    ok, detail = probe(opts.thrift_port, timeout=max(5.0, deadline - time.monotonic()))
                except ProbeError as exc:
                    raise UserError(str(exc)) from None
                if ok:
                    state["ready_seconds"] = round(time.monotonic() - t0, 1)
                    write_state(opts, state)
                    return state
                if "do not see" in detail:
                    raise UserError(detail)
            time.sleep(1)
        raise UserError(f"the Thrift server did not answer within {opts.timeout:.0f}s "
                        f"({detail or 'port not open'}); logs in {run / 'logs'}")
    except BaseException:
        opts.log("startup failed: stopping what was started")
        stop_processes(state["processes"], run, grace=10, log=opts.log)
        try:
            opts.state_file.unlink()
        except OSError:
            pass
        raise


def _thrift_command(opts: Options, home: Path, master_url: str, tag: str, log4j: Path,
                    auth_classes: Path) -> list[str]:
    from sflux.core.spark import session_conf

    data = opts.data_dir
    # The same SQL/tuning confs as the embedded target, with this data dir.
    saved = os.environ.get("SANTEFLUX_DATA_DIR")
    os.environ["SANTEFLUX_DATA_DIR"] = str(data)
    try:
        conf = session_conf()
    finally:
        if saved is None:
            os.environ.pop("SANTEFLUX_DATA_DIR", None)
        else:
            os.environ["SANTEFLUX_DATA_DIR"] = saved
    for key in ("spark.master", "spark.app.name", "spark.driver.memory", "spark.driver.extraJavaOptions"):
        conf.pop(key, None)
    conf.update({
        "spark.sql.warehouse.dir": str(data / "warehouse"),
        "spark.local.dir": str(data / "tmp"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={data / 'metastore_db'};create=true",
        "spark.driver.extraJavaOptions": (f"{tag} -Dderby.system.home={data} "
                                          f"-D{auth.FILE_PROPERTY}={opts.run_dir / 'auth' / 'thrift.passwd'} "
                                          f"-Dderby.stream.error.file={data / 'derby.log'} "
                                          f"-Dlog4j2.configurationFile=file:{log4j}"),
        "spark.executor.extraJavaOptions": f"{tag} -Dlog4j2.configurationFile=file:{log4j}",
        "spark.driver.host": HOST,
        "spark.driver.bindAddress": HOST,
        "spark.executor.memory": opts.worker_memory,
        "spark.cores.max": str(opts.workers * opts.worker_cores),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    })
    cmd = [str(home / "bin" / "spark-submit"), "--master", master_url, "--deploy-mode", "client",
           "--class", THRIFT_CLASS, "--name", "santeflux-thrift", "--driver-memory", opts.driver_memory,
           "--driver-class-path", str(auth_classes)]
    for key, value in conf.items():
        cmd += ["--conf", f"{key}={value}"]
    for key, value in {"hive.server2.thrift.port": opts.thrift_port,
                       "hive.server2.thrift.bind.host": HOST,
                       **auth.HIVECONF,
                       "hive.server2.transport.mode": "binary"}.items():
        cmd += ["--hiveconf", f"{key}={value}"]
    return [*cmd, "spark-internal"]


def stop(opts: Options, grace: float = 30.0) -> int:
    """Stop the recorded processes and any tagged leftover. Returns how many
    processes were signalled (0 when nothing ran)."""
    state = read_state(opts) or {"processes": []}
    procs = state["processes"]
    live = running(state) + [{"pid": p} for p in tagged_pids(opts.run_dir)]
    if not live:
        opts.log("not running")
    else:
        left = stop_processes(procs, opts.run_dir, grace, opts.log)
        if left:
            raise UserError(f"processes still alive after SIGKILL: {left}")
        opts.log("stopped")
    try:
        opts.state_file.unlink()
    except OSError:
        pass
    return len(live)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use scripts/spark_cluster.py")
