"""The cluster's processes, ports and probes: finding, signalling and reaping
tagged JVMs, free ports, and the Thrift query that checks the executors
see the key.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

from sflux.cluster import auth
from sflux.privacy import keys


KEY_ENV = keys.KEY_ENV
HOST = "127.0.0.1"
RUN_SUBDIR = "spark-cluster"  # under the data dir: state file, logs, worker dirs
STATE_FILE = "state.json"
TAG_PROPERTY = "santeflux.cluster"

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
THRIFT_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"


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
    """Run one statement on the Thrift server (PyHive, with the user and
    password of this environment) and fetch all rows."""
    from pyhive import hive

    transport = auth.sasl_transport(host, port, auth.thrift_user(), auth.password_from_env(), timeout)
    conn = hive.connect(thrift_transport=transport)
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


