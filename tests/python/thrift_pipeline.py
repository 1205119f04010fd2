"""The Thrift path's pipeline, run in the background of the test session.

Loading the shared landing files into a data dir of its own, starting a
standalone cluster (master, worker, Thrift server: three JVMs) and running
`dbt build --target thrift` against it takes about two minutes, most of it
spent by dbt-spark sleeping between status polls (its integer
`poll_interval` makes each statement wait at least a second). None of it
touches the shared warehouse, so conftest starts it in a thread as soon
as the shared warehouse is built (before that, both would compete for the
same cores while every test waits for the shared build), and the rest of
the suite runs meanwhile; the Thrift tests wait for it
(`ThriftPipeline.wait`, which starts it if nothing has) and compare.

Everything runs through the user's entry points as subprocesses: the loader
CLI, `scripts/spark_cluster.py start|status|stop`, and the `dbt` CLI. While
dbt builds, a local attacker without the cluster's RPC secret submits its
own application to the master (tests/python/cluster/master_attacker.py);
the Thrift tests read what it got.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

from sflux.cluster import standalone as cluster

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "scripts"
START_TIMEOUT = 300  # seconds; a busy 2-core machine is slow to start 3 JVMs
# The marts the Thrift build must reproduce exactly (cluster/test_thrift.py).
COMPARED = ["analytics.fct_city_stress_matrix", "analytics.fct_city_heart_rate"]


class StepFailed(AssertionError):
    pass


def run_step(cmd: list[str], env: dict, timeout: float, what: str, log: list[str]) -> subprocess.CompletedProcess:
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, cwd=str(REPO_ROOT), capture_output=True, text=True,
                          timeout=timeout, check=False)
    log.append(f"{what}: {time.monotonic() - started:.1f}s (exit {proc.returncode})")
    if proc.returncode != 0:
        raise StepFailed(f"{what} failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


class ThriftPipeline:
    """Load, start the cluster, build over Thrift: in a thread. `wait()`
    returns what the tests need, or raises what failed; `stop()` stops the
    cluster (idempotent) and returns the pids still alive afterwards."""

    def __init__(self, landing: Path, base: Path, key: str):
        self.landing = landing
        self.base = base
        self.data = base / "data"
        self.env = dict(os.environ)
        self.env.update({
            "SANTEFLUX_DATA_DIR": str(self.data),
            "SANTEFLUX_DRIVER_MEMORY": "1g",
            "DBT_ENV_SECRET_PSEUDONYM_KEY": key,
            "DBT_ENV_SECRET_THRIFT_PASSWORD": secrets.token_urlsafe(24),
        })
        self.port = self.master_port = 0  # picked by start(), just before use
        self.opts = cluster.Options(data_dir=self.data.resolve())
        self.log: list[str] = []
        # {table: (columns, rows)} of the embedded build's COMPARED marts, as
        # `built` left them: the Thrift tests run after the tests that
        # change the shared warehouse, and compare with this.
        self.embedded: dict[str, tuple[list[str], list[tuple]]] = {}
        self.state: dict | None = None
        self.status_output = ""
        self.attack_output = ""
        self._attacker: subprocess.Popen | None = None
        self._error: BaseException | None = None
        self._started = False
        self._stopped = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="thrift-pipeline", daemon=True)

    @property
    def cli(self) -> list[str]:
        return [sys.executable, str(SCRIPTS / "spark_cluster.py")]

    @property
    def common(self) -> list[str]:
        return ["--data-dir", str(self.data)]

    def keep_embedded_marts(self, spark) -> None:
        """Keep the embedded build's COMPARED marts (called by `built`)."""
        for table in COMPARED:
            df = spark.table(table)
            self.embedded[table] = (df.columns, [tuple(row) for row in df.collect()])

    def start(self) -> ThriftPipeline:
        """Start the pipeline's thread, once (later calls do nothing)."""
        with self._lock:
            if not self._started and not self._stopped:
                self._started = True
                self.port = cluster.free_port()
                self.master_port = cluster.free_port()
                while self.master_port == self.port:
                    self.master_port = cluster.free_port()
                self._thread.start()
        return self

    def _run(self) -> None:
        try:
            run_step([sys.executable, str(SCRIPTS / "load_raw.py"), "--input", str(self.landing), "--quiet"],
                     self.env, 600, "loader into the cluster's data dir", self.log)
            with self._lock:
                if self._stopped:
                    return
                run_step([*self.cli, "start", *self.common, "--workers", "1", "--worker-cores", "2",
                          "--worker-memory", "1g", "--driver-memory", "1g",
                          "--master-port", str(self.master_port), "--thrift-port", str(self.port),
                          "--timeout", str(START_TIMEOUT)], self.env, START_TIMEOUT + 60, "cluster start",
                         self.log)
            self.state = cluster.read_state(self.opts)
            status = subprocess.run([*self.cli, "status", *self.common], env=self.env,
                                    capture_output=True, text=True, timeout=60)
            self.status_output = f"exit {status.returncode}: {status.stdout}{status.stderr}"
            if status.returncode != 0:
                raise StepFailed(f"cluster status failed: {self.status_output}")
            self._start_attacker()
            build_env = dict(self.env)
            build_env.update({
                "SANTEFLUX_TARGET": "thrift",
                "SANTEFLUX_THRIFT_HOST": cluster.HOST,
                "SANTEFLUX_THRIFT_PORT": str(self.port),
                "DBT_TARGET_PATH": str(self.base / "target"),
                "DBT_LOG_PATH": str(self.base / "logs"),
                # Each statement waits >= 1 s for its first status poll (the
                # adapter's integer poll_interval); 8 threads overlap the waits.
                "SANTEFLUX_DBT_THREADS": "8",
            })
            run_step([str(Path(sys.executable).parent / "dbt"), "build", "--project-dir", str(REPO_ROOT)],
                     build_env, 1800, "dbt build --target thrift", self.log)
            self._finish_attacker()
        except BaseException as exc:  # reported by wait(), in the test that needs it
            self._error = exc
            self._finish_attacker()

    def _start_attacker(self) -> None:
        """A process of this user, without the key, the password or the RPC secret."""
        env = {k: v for k, v in self.env.items() if not k.startswith("DBT_ENV_SECRET_")}
        env.update({"SPARK_LOCAL_IP": cluster.HOST, "SANTEFLUX_DATA_DIR": str(self.base / "attacker")})
        self._attacker = subprocess.Popen(
            [sys.executable, str(Path(__file__).parent / "cluster" / "master_attacker.py"),
             self.state["master_url"]], env=env, cwd=str(self.base), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)

    def _finish_attacker(self, timeout: float = 150) -> None:
        """Its application gives up after the master's registration retries
        (about a minute), usually long before dbt is done."""
        if self._attacker is None:
            return
        try:
            out, _ = self._attacker.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._attacker.kill()
            out, _ = self._attacker.communicate()
            out += "\nTIMEOUT: the attacker was still running"
        self.attack_output = out
        self._attacker = None

    def wait(self, timeout: float = 2400) -> ThriftPipeline:
        self.start()  # a Thrift test selected without the shared build
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise StepFailed(f"the Thrift pipeline did not finish within {timeout:.0f}s: {self.log}")
        print("\n".join(self.log))
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> tuple[subprocess.CompletedProcess | None, list[int]]:
        """Stop the cluster; (the stop command's result, pids left alive)."""
        with self._lock:
            if self._stopped:
                return None, []
            self._stopped = True
            started = cluster.read_state(self.opts) or {"processes": []}
            if not started["processes"] and not cluster.tagged_pids(self.opts.run_dir):
                return None, []
            stop = subprocess.run([*self.cli, "stop", *self.common], env=self.env,
                                  capture_output=True, text=True, timeout=180)
            time.sleep(0.5)
            recorded = [p["pid"] for p in started["processes"]]
            left = [pid for pid in recorded if cluster.process_alive(pid)] + cluster.tagged_pids(self.opts.run_dir)
            return stop, left
