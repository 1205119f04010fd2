"""The Spark session used by the scripts and tests.

Its configuration is read from the ``local`` target of profiles/profiles.yml,
so a session created here is interchangeable with the one dbt creates (dbt's
``getOrCreate`` reuses it when both run in one process, e.g. under pytest).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jinja2
import yaml

from sflux.core import paths, storage
from sflux.core.errors import UserError

JAVA_HINT = (
    "install Java 17, e.g. `sudo apt-get install -y openjdk-17-jre-headless` "
    "(Debian/Ubuntu) or `brew install openjdk@17` (macOS), then set JAVA_HOME"
)


def java_major_version() -> int | None:
    """Major version of the java that Spark will launch, or None if absent."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        return None
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except OSError:
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return None
    major = int(match.group(1))
    # Java 8 and older report "1.8.0".
    return int(match.group(2)) if major == 1 and match.group(2) else major


def require_java() -> None:
    major = java_major_version()
    if major is None:
        raise UserError(f"Java not found (Spark 4 needs Java 17+): {JAVA_HINT}")
    if major < 17:
        raise UserError(f"Java {major} found but Spark 4 needs Java 17+: {JAVA_HINT}")


def _env_var(name: str, default: Any = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise UserError(f"environment variable {name} is required by profiles.yml")
    return str(value)


def profile_target(target: str = "local") -> dict[str, Any]:
    """Render profiles.yml the way dbt does (only env_var is needed) and
    return one target's settings."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.globals["env_var"] = _env_var
    text = paths.profiles_file().read_text(encoding="utf-8")
    rendered = yaml.safe_load(env.from_string(text).render())
    return rendered["santeflux"]["outputs"][target]


def session_conf() -> dict[str, str]:
    conf = {str(k): str(v) for k, v in profile_target("local")["server_side_parameters"].items()}
    # dbt-spark forces ANSI off for every session; match it so the scripts
    # evaluate casts exactly as the models do.
    conf["spark.sql.ansi.enabled"] = "false"
    return conf


QUIET_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")


def get_spark():  # -> pyspark.sql.SparkSession (imported lazily: slow import)
    """Start (or reuse) the embedded Spark session with the project's confs."""
    require_java()
    # PySpark logs each SQL error as a huge JSON stack trace before raising
    # it; the raised error already says everything.
    for name in QUIET_LOGGERS:
        logging.getLogger(name).disabled = True
    conf = session_conf()
    # Before the JVM starts: it inherits the umask, and what an older run
    # left readable by others is made private (sflux.core.storage).
    storage.private_umask()
    storage.restrict(paths.data_dir())
    for key in ("spark.sql.warehouse.dir", "spark.local.dir"):
        Path(conf[key]).mkdir(parents=True, exist_ok=True)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.enableHiveSupport()
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as exc:  # py4j wraps the JVM error; keep its first line
        text = str(exc)
        if "another instance of Derby" in text or "XSDB6" in text:
            raise UserError(
                f"the metastore in {paths.data_dir()} is locked by another Spark "
                "process (dbt, the loader, sqlfluff or a test); wait for it to finish"
            ) from None
        raise


def table_exists(spark, table: str) -> bool:
    """True when `schema.table` exists in the metastore."""
    return bool(spark.catalog.tableExists(table))
