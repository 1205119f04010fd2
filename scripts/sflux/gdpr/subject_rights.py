"""GDPR operations on the warehouse: the subject, their rows, the subject
access export (Art. 15/20) and retention purges. Erasure and its
verification are in erasure.py, the files outside the warehouse in
residues.py.

Safety rules, everywhere in this package:
- a user id is validated against USER_ID_PATTERN and only ever reaches SQL
  as a bound parameter (`spark.sql(text, args=...)`); table and column
  names come from the dbt manifest, never from the command line;
- the key is checked against raw.pseudonym_key_registry before any
  operation that uses it (a wrong key would match nobody);
- every operation, successful or not, appends a row to raw.privacy_audit_log
  with the subject's pseudonym, never the raw id.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

from pyspark.sql import SparkSession

from sflux.core.errors import UserError
from sflux.gdpr import residues, subject_data
from sflux.gdpr.subject_data import SubjectRelation
from sflux.privacy import audit, keys

USER_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")
KEY_PURPOSE = "find the subject's pseudonymized rows"


class SubjectNotFound(UserError):
    """No relation or managed file holds the subject."""


def quoted(name: str) -> str:
    """Quote a dotted identifier from the manifest."""
    return ".".join("`" + part.replace("`", "``") + "`" for part in name.split("."))


def _literal(value: Any) -> str:
    """A partition value read back from the table, as a SQL literal (Spark
    takes no parameter markers in partition specs)."""
    if isinstance(value, datetime):
        return f"timestamp'{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"date'{value.isoformat()}'"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def validate_user_id(user_id: str) -> str:
    if not USER_ID_PATTERN.fullmatch(user_id or ""):
        raise UserError(
            "invalid --user-id: expected 1-128 characters from letters, digits and _ . : @ - "
            "(ids are never pasted into SQL; this one was rejected before any query)")
    return user_id


def require_key() -> None:
    keys.require_key(KEY_PURPOSE)


def checked_key_version(spark: SparkSession, operation: str) -> int:
    """The registered version of the key Spark holds; a wrong key is refused
    (and audited) before it is used."""
    try:
        return keys.require_registered_key(spark, KEY_PURPOSE)
    except UserError:
        audit.record(spark, operation, status="rejected_key_mismatch")
        raise


def pseudonym_of(spark: SparkSession, user_id: str) -> str:
    """HMAC pseudonym computed inside Spark, exactly as macros/privacy/pseudonymize.sql."""
    return spark.sql(f"select {keys.pseudonym_sql(':uid')}", args={"uid": user_id}).collect()[0][0]


@dataclass
class Subject:
    user_id: str
    pseudonym: str
    tokenized_values: list[str] = field(default_factory=list)

    def keys(self, kind: str) -> list[str]:
        return {"raw_id": [self.user_id], "raw_text": [self.user_id], "pseudonym": [self.pseudonym],
                "tokenized_value": self.tokenized_values}[kind]


def _exists(spark: SparkSession, relation: str) -> bool:
    return bool(spark.catalog.tableExists(relation))


def resolve_subject(spark: SparkSession, user_id: str, planned: list[str] = ()) -> Subject:
    """The subject's keys: raw id, pseudonym and the values the vault
    tokenized: those raw tables still hold, and the `planned` ones (an
    erasure plan recorded them before raw.users lost them)."""
    from sflux.privacy.policies import source_policies

    subject = Subject(validate_user_id(user_id), pseudonym_of(spark, user_id), list(planned))
    for policy in source_policies():
        if policy.treatment != "tokenize" or not _exists(spark, policy.table):
            continue
        rows = spark.sql(
            f"select distinct cast({quoted(policy.column)} as string) from {quoted(policy.table)}"
            f" where user_id = :uid and {quoted(policy.column)} is not null",
            args={"uid": user_id},
        ).collect()
        subject.tokenized_values += [r[0] for r in rows if r[0] not in subject.tokenized_values]
    return subject


def holds_as_field(column_sql: str, parameter: str) -> str:
    """SQL: the text holds the bound parameter as a whole field (not inside
    a longer id), quoted literally (\\Q...\\E) so no character of it acts
    as a regex."""
    return (f"{column_sql} rlike concat('(^|[^A-Za-z0-9_])\\\\Q', :{parameter}, "
            f"'\\\\E([^A-Za-z0-9_]|$)')")


def _where(relation: SubjectRelation, subject: Subject) -> tuple[str, dict[str, Any]]:
    keys = subject.keys(relation.key_kind)
    if not keys:
        return "false", {}
    names = [f"k{i}" for i in range(len(keys))]
    column = f"cast({quoted(relation.key_column)} as string)"
    if relation.key_kind == "raw_text":
        # Free text (a quarantined line): the id as a whole field, quoted
        # literally (\\Q...\\E) so no character of it acts as a regex.
        clause = " or ".join(holds_as_field(column, n) for n in names)
        return f"({clause})", dict(zip(names, keys))
    clause = f"{column} in ({', '.join(':' + n for n in names)})"
    return clause, dict(zip(names, keys))


def subject_rows(spark: SparkSession, relation: SubjectRelation, subject: Subject):
    clause, args = _where(relation, subject)
    return spark.sql(f"select * from {quoted(relation.relation)} where {clause}", args=args)


# --------------------------------------------------------------------------
# export


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    raise TypeError(type(value).__name__)


def export(spark: SparkSession, user_id: str, out: Path | None) -> dict[str, Any]:
    """Write one JSON file per relation holding the subject, plus
    manifest.json, into `out` (inside the exports directory; default a new
    directory there). The manifest says when the bundle expires."""
    checked_key_version(spark, "export")
    subject = resolve_subject(spark, user_id)
    out = residues.bundle_dir(out, subject.pseudonym)
    relations = [r for r in subject_data.discover() if _exists(spark, r.relation)]
    files, counts, payloads = [], {}, {}
    for relation in relations:
        rows = [r.asDict(recursive=True) for r in subject_rows(spark, relation, subject).collect()]
        if not rows:
            continue
        name = f"{relation.relation}.json"
        payload = json.dumps({"relation": relation.relation, "zone": relation.zone,
                              "matched_on": relation.key_kind, "rows": rows},
                             default=_json_default, ensure_ascii=False, indent=2, sort_keys=True)
        payloads[name] = payload
        counts[relation.relation] = len(rows)
        files.append({"file": name, "relation": relation.relation, "zone": relation.zone,
                      "rows": len(rows), "sha256": hashlib.sha256(payload.encode()).hexdigest()})
    if not counts:
        audit.record(spark, "export", status="not_found", subject_pseudonym_id=subject.pseudonym)
        raise SubjectNotFound(f"no data held about user id {user_id!r}: nothing exported")
    generated = datetime.now(timezone.utc)
    manifest = {
        "subject": {"user_id": user_id, "pseudonym": subject.pseudonym},
        "generated_at": generated.isoformat(timespec="seconds"),
        "expires_at": (generated + timedelta(days=residues.EXPORT_LIFETIME_DAYS)).isoformat(timespec="seconds"),
        "relations_searched": [r.relation for r in relations],
        "files": files,
        "format": "one JSON file per relation: {relation, zone, matched_on, rows}",
        "directory": str(out),
    }
    # The manifest first: it names the subject, so an erasure finds and
    # removes even a bundle whose writing was interrupted.
    out.mkdir(parents=True, exist_ok=True)
    (out / residues.MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False),
                                         encoding="utf-8")
    for name, payload in payloads.items():
        (out / name).write_text(payload, encoding="utf-8")
    audit.record(spark, "export", status="success", subject_pseudonym_id=subject.pseudonym,
                 relations=counts, details={"files": len(files)})
    return manifest


# --------------------------------------------------------------------------
# erasure's row removal (the steps are in erasure.py)


def remove_rows(spark: SparkSession, relation: SubjectRelation, subject: Subject) -> int:
    """Rewrite the relation without the subject's rows; only the partitions
    holding them are rewritten. Idempotent: a rerun finds nothing to remove."""
    clause, args = _where(relation, subject)
    n = spark.sql(f"select count(*) from {quoted(relation.relation)} where {clause}", args=args).collect()[0][0]
    if n == 0:
        return 0
    table = quoted(relation.relation)
    partitions = [c.name for c in spark.catalog.listColumns(relation.relation) if c.isPartition]
    scratch = quoted(relation.relation.split(".")[0] + "._erasure_scratch_" + relation.relation.split(".")[1])
    spark.sql(f"drop table if exists {scratch}")
    if partitions:
        cols = ", ".join(quoted(p) for p in partitions)
        spark.sql(
            f"create table {scratch} using parquet as select * from {table}"
            f" where ({cols}) in (select {cols} from {table} where {clause}) and not ({clause})",
            args={**args},
        )
        # Dynamic partition overwrite (profiles.yml): only those partitions are replaced;
        # a partition left empty by the subject is dropped explicitly.
        spark.sql(f"insert overwrite table {table} partition ({cols}) select * from {scratch}")
        emptied = spark.sql(
            f"select distinct {cols} from {table} where {clause}", args=args).collect()
        for row in emptied:
            spec = ", ".join(f"{quoted(p)} = {_literal(row[p])}" for p in partitions)
            spark.sql(f"alter table {table} drop if exists partition ({spec})")
    else:
        spark.sql(f"create table {scratch} using parquet as select * from {table} where not ({clause})",
                  args=args)
        spark.sql(f"insert overwrite table {table} select * from {scratch}")
    spark.sql(f"drop table if exists {scratch}")
    return int(n)


# --------------------------------------------------------------------------
# retention


def purge_expired(spark: SparkSession, as_of: date, log: Callable[[str], None]) -> dict[str, int]:
    """Remove rows older than each relation's declared retention, and the
    export bundles expired by the start of `as_of` (UTC)."""
    removed: dict[str, int] = {}
    bundles = residues.remove_expired_bundles(datetime.combine(as_of, time.min, tzinfo=timezone.utc))
    for bundle in bundles:
        log(f"removed the expired export bundle {bundle}")
    for relation in subject_data.discover():
        if relation.retention_days is None or not _exists(spark, relation.relation):
            continue
        if not relation.retention_column:
            raise UserError(f"{relation.resource}: retention_days needs retention_column")
        column = quoted(relation.retention_column)
        clause = f"to_date({column}) < date_sub(:as_of, {int(relation.retention_days)})"
        args = {"as_of": as_of}
        n = spark.sql(f"select count(*) from {quoted(relation.relation)} where {clause}", args=args).collect()[0][0]
        if n:
            table = quoted(relation.relation)
            partitions = [c.name for c in spark.catalog.listColumns(relation.relation) if c.isPartition]
            if partitions == [relation.retention_column]:
                for row in spark.sql(f"select distinct {column} from {table} where {clause}", args=args).collect():
                    spark.sql(f"alter table {table} drop if exists partition ({column} = {_literal(row[0])})")
            else:
                scratch = quoted(relation.relation.split(".")[0] + "._purge_scratch_" + relation.relation.split(".")[1])
                spark.sql(f"drop table if exists {scratch}")
                spark.sql(f"create table {scratch} using parquet as select * from {table} where not ({clause})",
                          args=args)
                spark.sql(f"insert overwrite table {table} select * from {scratch}")
                spark.sql(f"drop table if exists {scratch}")
            removed[relation.relation] = int(n)
            log(f"purged {n} row(s) older than {relation.retention_days} days from {relation.relation}")
    audit.record(spark, "purge_expired", status="success", relations=removed,
                 details={"as_of": as_of.isoformat(), "export_bundles_removed": len(bundles)})
    return removed

