"""The distributed path: the same small landing data, loaded into a fresh data
dir, built by `dbt build` on the `thrift` target against a local standalone
cluster (scripts/spark_cluster.py: master, one worker, Thrift server), gives
the same marts as the embedded build. Stopping the cluster leaves no JVM.

The cluster holds the key, so it must be private to the pipeline: the
attacks here are a client without the password (NOSASL, a wrong password
or user), a listener on a public address, a local application submitted to
the master without the RPC secret, and the secrets or the raw zone left
readable in the environment, the command lines or the files.

The pipeline itself runs in the background from the end of the shared build
(tests/python/thrift_pipeline.py); these tests run last, after the tests that
change the shared warehouse (conftest orders them), and compare with the
marts as the shared build made them (`built` keeps them for this).
Skip them with SANTEFLUX_SKIP_THRIFT=1.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
from datetime import date, datetime
from decimal import Decimal

import pytest

from sflux.cluster import auth
from sflux.cluster import standalone as cluster
from sflux.core import storage
from thrift_pipeline import COMPARED

# Every test here needs the cluster's JVMs (started in the background by
# conftest), so all are `spark`: `make check` must start no JVM.
pytestmark = [
    pytest.mark.skipif(os.environ.get("SANTEFLUX_SKIP_THRIFT") == "1",
                       reason="SANTEFLUX_SKIP_THRIFT=1: thrift test skipped"),
    pytest.mark.spark,
]


@pytest.fixture(scope="module")
def thrift_built(thrift_pipeline):
    """The background pipeline (conftest, tests/python/thrift_pipeline.py), finished:
    loaded, cluster started (three processes, `status` answering), built."""
    if thrift_pipeline is None:
        pytest.fail("the Thrift pipeline was not started for this session")
    pipeline = thrift_pipeline.wait()
    assert pipeline.state and len(pipeline.state["processes"]) == 3, pipeline.state
    return pipeline


def _norm(value):
    if isinstance(value, (date, datetime)):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _same(a, b) -> bool:
    a, b = _norm(a), _norm(b)
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12)
    return a == b


@pytest.mark.parametrize("table", COMPARED)
def test_thrift_build_equals_embedded_build(thrift_built, built, table):
    # The embedded build's mart as `built` left it (conftest keeps it: the
    # tests that change the shared warehouse run before this one).
    columns, embedded = thrift_built.embedded[table]
    expected = sorted((tuple(_norm(v) for v in row) for row in embedded), key=repr)

    conn = _connect(thrift_built, auth.DEFAULT_USER, thrift_built.env[auth.PASSWORD_ENV])
    try:
        cur = conn.cursor()
        cur.execute(f"select {', '.join(f'`{c}`' for c in columns)} from {table}")
        actual = sorted((tuple(_norm(v) for v in row) for row in cur.fetchall()), key=repr)
    finally:
        conn.close()

    assert expected, f"{table} is empty in the embedded build"
    assert len(actual) == len(expected), (table, len(actual), len(expected))
    for got, want in zip(actual, expected):
        assert all(_same(g, w) for g, w in zip(got, want)), (table, columns, got, want)


def _connect(pipeline, user: str, password: str | None):
    """A PyHive connection: SASL PLAIN with this user and password, or
    NOSASL (no authentication at all) when password is None."""
    from pyhive import hive
    from thrift.transport import TSocket, TTransport

    if password is None:
        sock = TSocket.TSocket(cluster.HOST, pipeline.port)
        sock.setTimeout(30_000)
        return hive.connect(thrift_transport=TTransport.TBufferedTransport(sock), username=user)
    return hive.connect(thrift_transport=auth.sasl_transport(cluster.HOST, pipeline.port, user, password, 30))


def _getenv_key(conn) -> str | None:
    cur = conn.cursor()
    cur.execute("select reflect('java.lang.System', 'getenv', 'DBT_ENV_SECRET_PSEUDONYM_KEY')")
    return cur.fetchall()[0][0]


@pytest.mark.parametrize("who", ["nosasl", "wrong password", "wrong user", "empty password", "password prefix"])
def test_the_key_holding_thrift_server_refuses_clients_without_the_password(thrift_built, who):
    password = thrift_built.env[auth.PASSWORD_ENV]
    user, guess = {
        "nosasl": (auth.DEFAULT_USER, None),
        "wrong password": (auth.DEFAULT_USER, "not-the-password-" + "x" * 16),
        "wrong user": ("analyst", password),
        "empty password": (auth.DEFAULT_USER, ""),
        "password prefix": (auth.DEFAULT_USER, password[:-1]),
    }[who]
    try:
        conn = _connect(thrift_built, user, guess)
        leaked = _getenv_key(conn)
    except Exception as exc:  # refused: the transport or the server says so
        assert "Error validating the login" in str(exc) or "read 0 bytes" in str(exc), exc
        return
    pytest.fail(f"{who}: admitted, and read the key: {leaked is not None}")


def test_the_pipeline_with_the_password_is_admitted(thrift_built):
    conn = _connect(thrift_built, auth.DEFAULT_USER, thrift_built.env[auth.PASSWORD_ENV])
    try:
        # By design this engine holds the key (the engineer's persona).
        assert _getenv_key(conn) == thrift_built.env["DBT_ENV_SECRET_PSEUDONYM_KEY"]
    finally:
        conn.close()


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on `port` (from /proc/net)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


# 127.0.0.1 as /proc/net/tcp writes it, and as an IPv4-mapped IPv6 address.
LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F"}


def test_the_cluster_listens_on_loopback_only(thrift_built):
    for role in ("thrift_port", "master_port"):
        port = thrift_built.state[role]
        addresses = _listening_addresses(port)
        assert addresses, f"nothing listens on the {role} {port}"
        assert addresses <= LOOPBACK, f"{role} {port} listens on {addresses}"
    # And from this host's outward address, the port is closed.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: only picks the outward interface
            outward = probe.getsockname()[0]
        except OSError:
            outward = None
    if outward and not outward.startswith("127."):
        with socket.socket() as client:
            client.settimeout(5)
            assert client.connect_ex((outward, thrift_built.port)) != 0, f"reachable on {outward}"


def test_no_local_application_reaches_the_executors_without_the_rpc_secret(thrift_built):
    out = thrift_built.attack_output
    assert out, "the master attack did not run"
    assert "ADMITTED" not in out and thrift_built.env["DBT_ENV_SECRET_PSEUDONYM_KEY"] not in out, out[-2000:]
    assert "REFUSED" in out and "TIMEOUT" not in out, out[-2000:]
    # Refused by the authentication, not for some other reason.
    assert "SASL" in out or "SaslMessage" in out, out[-2000:]


def _secrets(pipeline) -> dict[str, str]:
    conf = (pipeline.opts.run_dir / "conf" / "spark-defaults.conf").read_text()
    rpc = dict(line.split(" ", 1) for line in conf.splitlines())["spark.authenticate.secret"]
    return {"password": pipeline.env[auth.PASSWORD_ENV], "rpc secret": rpc}


def test_no_cluster_process_shows_the_password_or_the_rpc_secret(thrift_built):
    pids = cluster.tagged_pids(thrift_built.opts.run_dir)
    assert len(pids) >= 4, pids  # master, worker, Thrift server, an executor
    for pid in pids:
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
        environ = open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace")
        for what, value in _secrets(thrift_built).items():
            assert value not in cmdline, f"the {what} is on the command line of pid {pid}"
        assert thrift_built.env[auth.PASSWORD_ENV] not in environ, f"the password is in pid {pid}'s environment"
    for path in (thrift_built.opts.run_dir / "logs").iterdir():
        text = path.read_text(errors="replace")
        assert all(value not in text for value in _secrets(thrift_built).values()), path


def test_the_cluster_keeps_raw_the_metastore_and_its_secrets_private(thrift_built):
    data = thrift_built.opts.data_dir
    assert any((data / "warehouse" / "raw.db").iterdir()), "the Thrift build left no raw table"
    for root in storage.private_paths(data):
        assert root.exists(), root
        assert storage.readable_by_others(root) == [], root
    stored = (thrift_built.opts.run_dir / "auth" / "thrift.passwd").read_text()
    assert thrift_built.env[auth.PASSWORD_ENV] not in stored and ":pbkdf2-sha256:" in stored


def test_stopping_the_cluster_leaves_no_jvm(thrift_built):
    stop, left = thrift_built.stop()
    assert stop is not None and stop.returncode == 0, stop and (stop.stdout + stop.stderr)
    assert not left, f"JVMs left after stop: {left}"
    after = subprocess.run([*thrift_built.cli, "status", *thrift_built.common], env=thrift_built.env,
                           capture_output=True, text=True, timeout=60)
    assert after.returncode == 3, after.stdout + after.stderr
