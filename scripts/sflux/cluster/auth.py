"""Authentication on the pipeline's Thrift server, which holds the key.

HiveServer2 runs with ``hive.server2.authentication=CUSTOM`` and the class
in java/PasswordFileAuthenticator.java, compiled here at cluster start
against the pyspark jars (cached per source and Spark version). It checks
the SASL PLAIN user and password of every connection against a salted
PBKDF2 hash in a 0600 file under the cluster's run dir. The password itself
comes only from the environment of the client (dbt's profile, this CLI) and
never reaches the server's environment, a conf, an argument or a log.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
from pathlib import Path

from sflux.core.errors import UserError

PASSWORD_ENV = "DBT_ENV_SECRET_THRIFT_PASSWORD"
USER_ENV = "SANTEFLUX_THRIFT_USER"
DEFAULT_USER = "pipeline"
MIN_PASSWORD_LENGTH = 16

AUTH_CLASS = "org.santeflux.auth.PasswordFileAuthenticator"
FILE_PROPERTY = "santeflux.thrift.passwd"
SOURCE = Path(__file__).resolve().parent / "java" / "PasswordFileAuthenticator.java"
SCHEME = "pbkdf2-sha256"
# The password is a random token (make thrift-password), not something a
# person chose, so the hash guards against a leaked file, not a dictionary;
# the iterations only keep each login cheap for the server.
ITERATIONS = 100_000


def thrift_user() -> str:
    user = os.environ.get(USER_ENV, DEFAULT_USER)
    if not user or ":" in user or not user.isprintable():
        raise UserError(f"{USER_ENV}={user!r} is not a user name (printable, no ':')")
    return user


def password_from_env() -> str:
    password = os.environ.get(PASSWORD_ENV, "")
    if len(password) < MIN_PASSWORD_LENGTH:
        what = "is not set" if not password else f"is shorter than {MIN_PASSWORD_LENGTH} characters"
        raise UserError(f"{PASSWORD_ENV} {what}: the Thrift server only admits clients with it; "
                        "`make thrift-password` creates one in .secrets/thrift.password")
    return password


def hash_line(user: str, password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """user:pbkdf2-sha256:iterations:salt:hash, the line the Java class checks."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return f"{user}:{SCHEME}:{iterations}:{salt.hex()}:{digest.hex()}"


def write_password_file(path: Path, user: str, password: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    temp = path.with_name(path.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(hash_line(user, password) + "\n")
    os.chmod(temp, 0o600)
    temp.replace(path)
    return path


def compile_authenticator(spark_home: Path, cache_dir: Path) -> Path:
    """The directory holding the compiled class (for --driver-class-path),
    compiled once per source text and Spark version."""
    source = SOURCE.read_bytes()
    jars = spark_home / "jars"
    version = ",".join(sorted(p.name for p in jars.glob("spark-hive-thriftserver*.jar")))
    tag = hashlib.sha256(source + version.encode()).hexdigest()[:16]
    classes = cache_dir / f"classes-{tag}"
    if (classes / "org" / "santeflux" / "auth" / "PasswordFileAuthenticator.class").exists():
        return classes
    javac = shutil.which("javac", path=str(Path(os.environ["JAVA_HOME"]) / "bin")) \
        if os.environ.get("JAVA_HOME") else None
    javac = javac or shutil.which("javac")
    if not javac:
        raise UserError("javac not found: the Thrift server's password check is compiled at start; "
                        "install a JDK 17, e.g. `sudo apt-get install -y openjdk-17-jdk-headless`")
    building = cache_dir / f"building-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True, mode=0o700)
    proc = subprocess.run([javac, "-nowarn", "-cp", f"{jars}/*", "-d", str(building), str(SOURCE)],
                          capture_output=True, text=True, timeout=180, check=False)
    if proc.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        first = (proc.stderr or proc.stdout).strip().splitlines()
        raise UserError(f"javac failed on {SOURCE.name}: {first[0] if first else 'no output'}")
    shutil.rmtree(classes, ignore_errors=True)
    building.replace(classes)
    return classes


# The password file's path reaches the class as the JVM system property
# FILE_PROPERTY (standalone._thrift_command).
HIVECONF = {"hive.server2.authentication": "CUSTOM",
            "hive.server2.custom.authentication.class": AUTH_CLASS}


def write_rpc_secret(conf_dir: Path) -> None:
    """spark-defaults.conf (0600) in the cluster's SPARK_CONF_DIR, read by the
    master, the workers and spark-submit: a random secret that every RPC
    connection must prove it knows (spark.authenticate), so a local client
    cannot submit its own application to the master and have the workers
    run it in executors that inherit the key. Executors get it from the
    worker through their environment, not their command line."""
    conf_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = conf_dir / "spark-defaults.conf"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(f"spark.authenticate true\nspark.authenticate.secret {secrets.token_hex(32)}\n")
    os.chmod(path, 0o600)


def sasl_transport(host: str, port: int, user: str, password: str, timeout: float):
    """A PyHive transport for a CUSTOM (SASL PLAIN) server, with a socket timeout."""
    import thrift_sasl
    from pyhive.hive import get_installed_sasl
    from thrift.transport import TSocket

    sock = TSocket.TSocket(host, port)
    sock.setTimeout(int(timeout * 1000))
    return thrift_sasl.TSaslClientTransport(
        lambda: get_installed_sasl(host=host, sasl_auth="PLAIN", username=user, password=password),
        "PLAIN", sock)
