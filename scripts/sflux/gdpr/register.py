"""raw.erasure_register: erasure requests and their plans, in the restricted
zone. Append-only: one row per status change of a request, the latest wins.

  subject_pseudonym_id  HMAC(key of key_version, user id): what the loader
                        matches landing lines against
  status                in_progress | complete
  recorded_at           when, UTC
  key_version           the key version of the pseudonym and of the record
  subject_record        the erasure plan as JSON, AES-256-GCM encrypted under
                        a secret derived from the same key
                        (keys.record_secret_sql), base64

The plan ({user_id, tokenized_values, tokens, landing_files}) is recorded before
anything is deleted, so a rerun after a crash still knows what to delete
once raw.users no longer holds the subject's tokenized values; and the
encrypted user id is what lets a key rotation re-key the register
(macros/privacy/rekey_erasure_register.sql). Without the key the register
shows no raw id, value or file name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

from sflux.privacy import keys

REGISTER = "raw.erasure_register"
COLUMNS = (("subject_pseudonym_id", "string"), ("status", "string"), ("recorded_at", "timestamp"),
           ("key_version", "int"), ("subject_record", "string"))
IN_PROGRESS, COMPLETE = "in_progress", "complete"


@dataclass
class Plan:
    """What an erasure deletes beyond what the raw id finds by itself."""

    tokenized_values: list[str] = field(default_factory=list)
    landing_files: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)  # their vault tokens, found in other tables

    def merged(self, other: Plan) -> Plan:
        return Plan(sorted({*self.tokenized_values, *other.tokenized_values}),
                    sorted({*self.landing_files, *other.landing_files}),
                    sorted({*self.tokens, *other.tokens}))


def ensure(spark: SparkSession) -> None:
    """Create the register, or add the columns an older layout lacks."""
    spark.sql("create schema if not exists raw")
    spark.sql(f"create table if not exists {REGISTER} ("
              + ", ".join(f"{name} {kind}" for name, kind in COLUMNS) + ") using parquet")
    present = {c.name.lower() for c in spark.catalog.listColumns(REGISTER)}
    missing = [f"{name} {kind}" for name, kind in COLUMNS if name not in present]
    if missing:
        spark.sql(f"alter table {REGISTER} add columns ({', '.join(missing)})")


def latest(spark: SparkSession, pseudonym: str) -> tuple[str | None, Plan | None]:
    """The subject's latest status and plan (None, None when never registered).
    The plan is decrypted inside Spark with the key the driver holds."""
    if not spark.catalog.tableExists(REGISTER):
        return None, None
    ensure(spark)
    row = spark.sql(
        f"select status, cast(aes_decrypt(unbase64(subject_record), {keys.record_secret_sql()}, 'GCM')"
        f" as string) from (select max_by(status, recorded_at) as status,"
        f" max_by(subject_record, recorded_at) as subject_record from {REGISTER}"
        " where subject_pseudonym_id = :p)", args={"p": pseudonym}).first()
    if row is None or row[0] is None:
        return None, None
    if row[1] is None:
        return row[0], None
    record = json.loads(row[1])
    return row[0], Plan(list(record["tokenized_values"]), list(record["landing_files"]),
                        list(record.get("tokens", [])))


def record(spark: SparkSession, pseudonym: str, user_id: str, status: str, plan: Plan,
           key_version: int) -> None:
    """Append one row: the status, and the plan encrypted inside Spark."""
    ensure(spark)
    payload = json.dumps({"user_id": user_id, "tokenized_values": plan.tokenized_values,
                          "landing_files": plan.landing_files, "tokens": plan.tokens}, sort_keys=True)
    spark.sql(
        f"insert into {REGISTER} ({', '.join(name for name, _ in COLUMNS)})"
        " select :p, :s, current_timestamp(), :v,"
        f" base64(aes_encrypt(cast(:plan as binary), {keys.record_secret_sql()}, 'GCM'))",
        args={"p": pseudonym, "s": status, "v": int(key_version), "plan": payload})
