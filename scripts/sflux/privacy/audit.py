"""The privacy audit trail: raw.privacy_audit_log, append-only, in the
restricted zone.

Every privacy operation (detokenization today; exports, erasures, purges
and builds as they are added) appends one row: when, who (the OS user),
what, for which subject (by pseudonym, never the raw id), which relations
with how many rows, under which key version and project commit. Nothing in
the project updates or deletes its rows: rows are only ever inserted, with
bound parameters.
"""

from __future__ import annotations

import getpass
import json
import subprocess
import uuid
from typing import Any

from pyspark.sql import SparkSession

from sflux.core import paths
from sflux.privacy.policies import project_var

AUDIT_TABLE = "raw.privacy_audit_log"

_DDL = f"""
create table if not exists {AUDIT_TABLE} (
    audit_id string,
    occurred_at timestamp,
    actor string,
    operation string,
    subject_pseudonym_id string,
    relations_touched string,
    row_count bigint,
    key_version int,
    git_commit string,
    status string,
    details string
) using parquet
"""


def git_commit() -> str:
    """The project's commit, or 'unknown' outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", str(paths.REPO_ROOT), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def ensure_table(spark: SparkSession) -> None:
    spark.sql("create schema if not exists raw")
    spark.sql(_DDL)


def record(
    spark: SparkSession,
    operation: str,
    *,
    status: str,
    subject_pseudonym_id: str | None = None,
    relations: dict[str, int] | None = None,
    details: dict[str, Any] | None = None,
) -> str:
    """Append one audit row and return its id. `details` must never hold a
    raw identifier or value: callers pass reasons, domains and counts."""
    ensure_table(spark)
    audit_id = uuid.uuid4().hex
    touched = relations or {}
    spark.sql(
        f"insert into {AUDIT_TABLE} select :audit_id, current_timestamp(), :actor, :operation,"
        " :subject, :relations, :row_count, :key_version, :commit, :status, :details",
        args={
            "audit_id": audit_id,
            "actor": getpass.getuser(),
            "operation": operation,
            "subject": subject_pseudonym_id,
            "relations": json.dumps(touched, sort_keys=True),
            "row_count": int(sum(touched.values())),
            "key_version": int(project_var("pseudonym_key_version")),
            "commit": git_commit(),
            "status": status,
            "details": json.dumps(details or {}, sort_keys=True),
        },
    )
    return audit_id
