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
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from sflux.core import paths
from sflux.core.errors import UserError
from sflux.privacy import keys

KEY_ENV = keys.KEY_ENV
HOST = "127.0.0.1"
RUN_SUBDIR = "spark-cluster"  # under the data dir: state file, logs, worker dirs
STATE_FILE = "state.json"
TAG_PROPERTY = "santeflux.cluster"

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
THRIFT_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"


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


# ---- processes ------------------------------------------------------------

def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", "replace")


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def process_alive(pid: int, marker: str | None = None) -> bool:
    """True when `pid` runs and, if given, its command line contains `marker`
    (guards against a recycled PID)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if _is_zombie(pid):
        return False
    return marker is None or marker in _cmdline(pid)


def tagged_pids(run_dir: Path) -> list[int]:
    """Every process whose command line carries this cluster's tag."""
    tag = f"-D{TAG_PROPERTY}={run_dir}"
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            cmd = _cmdline(int(entry.name))
            if tag + " " in cmd + " " and not _is_zombie(int(entry.name)):
                found.append(int(entry.name))
    return sorted(found)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _signal_pid(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _reap(pid: int) -> None:
    """Reap a child of this process so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        for pid in alive:
            _reap(pid)
        alive = [p for p in alive if process_alive(p)]
        if alive:
            time.sleep(0.2)
    return alive


def stop_processes(procs: list[dict], run_dir: Path, grace: float, log) -> list[int]:
    """SIGTERM each recorded process group in reverse start order (Thrift
    server first, master last), wait, SIGKILL what is left; then the same for
    any tagged JVM not recorded. Returns PIDs that survived (should be [])."""
    for proc in reversed(procs):
        if process_alive(proc["pid"]):
            log(f"stopping {proc['name']} (pid {proc['pid']})")
            _signal_group(proc["pgid"], signal.SIGTERM)
            left = _wait_gone([proc["pid"]], grace)
            if left:
                log(f"{proc['name']} did not stop within {grace:.0f}s: killing it")
                _signal_group(proc["pgid"], signal.SIGKILL)
                _wait_gone(left, 10)
        # Children (an executor) may outlive a leader that already exited.
        if _group_has_members(proc["pgid"]):
            _signal_group(proc["pgid"], signal.SIGKILL)
    strays = tagged_pids(run_dir)
    if strays:
        log(f"stopping {len(strays)} leftover process(es): {' '.join(map(str, strays))}")
        for pid in strays:
            _signal_pid(pid, signal.SIGTERM)
        left = _wait_gone(strays, grace)
        for pid in left:
            _signal_pid(pid, signal.SIGKILL)
        _wait_gone(left, 10)
    return [p for p in [*(x["pid"] for x in procs), *tagged_pids(run_dir)] if process_alive(p)]


def _group_has_members(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


# ---- ports and probes -----------------------------------------------------

def port_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def thrift_query(port: int, sql: str, timeout: float = 30.0, host: str = HOST) -> list[tuple]:
    """Run one statement on the Thrift server (PyHive, NOSASL) and fetch all rows."""
    from pyhive import hive
    from thrift.transport import TSocket, TTransport

    sock = TSocket.TSocket(host, port)
    sock.setTimeout(int(timeout * 1000))
    conn = hive.connect(thrift_transport=TTransport.TBufferedTransport(sock),
                        username=os.environ.get("USER", "santeflux"))
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchall()
    finally:
        try:
            conn.close()
        except Exception:  # the server may be gone
            pass


# The probe runs tasks on the executors (2 partitions), and checks there
# that the key is in their environment, without the key leaving Spark.
PROBE_SQL = (
    f"select id, {keys.key_sql()} is not null "
    "from range(0, 2, 1, 2)"
)


class ProbeError(Exception):
    """The server answered, but the probe query failed."""


def probe(port: int, timeout: float = 30.0) -> tuple[bool, str]:
    """(answers, detail). Answers means a query ran on the executors and
    they see the key. Raises ProbeError when the server reports an error."""
    from pyhive.exc import OperationalError

    try:
        rows = thrift_query(port, PROBE_SQL, timeout=timeout)
    except OperationalError as exc:
        raise ProbeError(f"the Thrift server answered with an error: {str(exc)[:300]}") from None
    except Exception as exc:  # connection refused, timeout, server still starting
        text = str(exc).strip().splitlines()
        return False, f"{type(exc).__name__}: {text[0][:200] if text else ''}"
    if len(rows) != 2 or not all(bool(r[1]) for r in rows):
        return False, f"the executors do not see {KEY_ENV} in their environment"
    return True, "ok"


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

    data = opts.data_dir.resolve()
    opts.data_dir = data
    run = opts.run_dir
    for sub in (run / "logs", run / "conf", data / "warehouse", data / "tmp"):
        sub.mkdir(parents=True, exist_ok=True)

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

        thrift = _launch("thrift", _thrift_command(opts, home, master_url, tag, log4j), env, opts, THRIFT_CLASS)
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


def _thrift_command(opts: Options, home: Path, master_url: str, tag: str, log4j: Path) -> list[str]:
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
           "--class", THRIFT_CLASS, "--name", "santeflux-thrift", "--driver-memory", opts.driver_memory]
    for key, value in conf.items():
        cmd += ["--conf", f"{key}={value}"]
    for key, value in {"hive.server2.thrift.port": opts.thrift_port,
                       "hive.server2.thrift.bind.host": HOST,
                       "hive.server2.authentication": "NOSASL",
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
