"""GDPR operations on the warehouse: subject access export (Art. 15/20),
erasure (Art. 17) with verification, and retention purges.

Safety rules, everywhere in this module:
- a user id is validated against USER_ID_PATTERN and only ever reaches SQL
  as a bound parameter (`spark.sql(text, args=...)`); table and column
  names come from the dbt manifest, never from the command line;
- every operation, successful or not, appends a row to raw.privacy_audit_log
  with the subject's pseudonym, never the raw id;
- an erasure is recorded in raw.erasure_register before anything is
  removed, each step is idempotent, and it is only marked complete when
  every step succeeded: a killed erasure is finished by running it again,
  and a partial one is never reported as success.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

from pyspark.sql import SparkSession

from sflux.core.errors import UserError
from sflux.gdpr import subject_data
from sflux.gdpr.subject_data import SubjectRelation
from sflux.privacy import audit, keys

USER_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")
REGISTER = "raw.erasure_register"
LANDING_SUFFIXES = (".csv", ".jsonl")
# Records of the erasure itself: they keep the pseudonym on purpose (proof
# that the request was honoured), so verification does not count them.
ERASURE_RECORDS = (REGISTER, audit.AUDIT_TABLE)


class SubjectNotFound(UserError):
    """No relation or managed file holds the subject."""


class ErasureIncomplete(Exception):
    """An erasure step failed; the register still says in_progress."""


def _q(name: str) -> str:
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
    keys.require_key("find the subject's pseudonymized rows")


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


def resolve_subject(spark: SparkSession, user_id: str) -> Subject:
    """The subject's keys: raw id, pseudonym and the values the vault tokenized."""
    from sflux.privacy.policies import source_policies

    subject = Subject(validate_user_id(user_id), pseudonym_of(spark, user_id))
    for policy in source_policies():
        if policy.treatment != "tokenize" or not _exists(spark, policy.table):
            continue
        rows = spark.sql(
            f"select distinct cast({_q(policy.column)} as string) from {_q(policy.table)}"
            f" where user_id = :uid and {_q(policy.column)} is not null",
            args={"uid": user_id},
        ).collect()
        subject.tokenized_values += [r[0] for r in rows]
    return subject


def _where(relation: SubjectRelation, subject: Subject) -> tuple[str, dict[str, Any]]:
    keys = subject.keys(relation.key_kind)
    if not keys:
        return "false", {}
    names = [f"k{i}" for i in range(len(keys))]
    column = f"cast({_q(relation.key_column)} as string)"
    if relation.key_kind == "raw_text":
        # Free text (a quarantined line): the id as a whole field, quoted
        # literally (\\Q...\\E) so no character of it acts as a regex.
        clause = " or ".join(
            f"{column} rlike concat('(^|[^A-Za-z0-9_])\\\\Q', :{n}, '\\\\E([^A-Za-z0-9_]|$)')" for n in names)
        return f"({clause})", dict(zip(names, keys))
    clause = f"{column} in ({', '.join(':' + n for n in names)})"
    return clause, dict(zip(names, keys))


def subject_rows(spark: SparkSession, relation: SubjectRelation, subject: Subject):
    clause, args = _where(relation, subject)
    return spark.sql(f"select * from {_q(relation.relation)} where {clause}", args=args)


# --------------------------------------------------------------------------
# managed landing files


def landing_dirs(explicit: list[Path] | None) -> list[Path]:
    """The landing directories under management: --landing, else
    $SANTEFLUX_LANDING_DIRS (os.pathsep-separated), else none."""
    if explicit:
        return explicit
    env = os.environ.get("SANTEFLUX_LANDING_DIRS", "")
    return [Path(p) for p in env.split(os.pathsep) if p]


def _landing_files(dirs: list[Path]) -> list[Path]:
    files: list[Path] = []
    for directory in dirs:
        if not directory.is_dir():
            raise UserError(f"landing directory not found: {directory}")
        files += sorted(p for p in directory.iterdir()
                        if p.is_file() and p.suffix in LANDING_SUFFIXES)
    return files


def _line_holds(line: str, suffix: str, user_id: str, header: list[str] | None) -> bool:
    """True when a landing line belongs to the subject (its user_id field)."""
    if suffix == ".jsonl":
        try:
            record = json.loads(line)
        except ValueError:
            return user_id in line  # malformed: be conservative
        return isinstance(record, dict) and record.get("user_id") == user_id
    try:
        fields = next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return user_id in line
    if header and "user_id" in header and len(fields) == len(header):
        return fields[header.index("user_id")] == user_id
    return user_id in fields


def scan_files(dirs: list[Path], user_id: str, rewrite: bool) -> dict[str, int]:
    """Lines of the subject per managed file; with rewrite, removes them
    (write to a temporary file, then an atomic rename: a killed run leaves
    either the old or the new file)."""
    found: dict[str, int] = {}
    for path in _landing_files(dirs):
        text = path.read_text(encoding="utf-8-sig")
        lines = text.splitlines(keepends=True)
        header = next(csv.reader([lines[0]])) if lines and path.suffix == ".csv" else None
        body = lines[1:] if header else lines
        kept = [ln for ln in body if not _line_holds(ln.rstrip("\r\n"), path.suffix, user_id, header)]
        removed = len(body) - len(kept)
        if removed:
            found[str(path)] = removed
            if rewrite:
                tmp = path.with_name(path.name + ".erasing")
                tmp.write_text("".join(lines[:1] if header else []) + "".join(kept), encoding="utf-8")
                os.replace(tmp, path)
    return found


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


def export(spark: SparkSession, user_id: str, out: Path) -> dict[str, Any]:
    """Write one JSON file per relation holding the subject, plus manifest.json."""
    subject = resolve_subject(spark, user_id)
    relations = [r for r in subject_data.discover() if _exists(spark, r.relation)]
    out.mkdir(parents=True, exist_ok=True)
    files, counts = [], {}
    for relation in relations:
        rows = [r.asDict(recursive=True) for r in subject_rows(spark, relation, subject).collect()]
        if not rows:
            continue
        name = f"{relation.relation}.json"
        payload = json.dumps({"relation": relation.relation, "zone": relation.zone,
                              "matched_on": relation.key_kind, "rows": rows},
                             default=_json_default, ensure_ascii=False, indent=2, sort_keys=True)
        (out / name).write_text(payload, encoding="utf-8")
        counts[relation.relation] = len(rows)
        files.append({"file": name, "relation": relation.relation, "zone": relation.zone,
                      "rows": len(rows), "sha256": hashlib.sha256(payload.encode()).hexdigest()})
    if not counts:
        audit.record(spark, "export", status="not_found", subject_pseudonym_id=subject.pseudonym)
        raise SubjectNotFound(f"no data held about user id {user_id!r}: nothing exported")
    manifest = {
        "subject": {"user_id": user_id, "pseudonym": subject.pseudonym},
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "relations_searched": [r.relation for r in relations],
        "files": files,
        "format": "one JSON file per relation: {relation, zone, matched_on, rows}",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False),
                                       encoding="utf-8")
    audit.record(spark, "export", status="success", subject_pseudonym_id=subject.pseudonym,
                 relations=counts, details={"files": len(files)})
    return manifest


# --------------------------------------------------------------------------
# erasure


def _ensure_register(spark: SparkSession) -> None:
    spark.sql("create schema if not exists raw")
    spark.sql(f"create table if not exists {REGISTER} (subject_pseudonym_id string,"
              " status string, recorded_at timestamp) using parquet")


def register_status(spark: SparkSession, pseudonym: str) -> str | None:
    """Latest status of the subject in the append-only register."""
    if not _exists(spark, REGISTER):
        return None
    row = spark.sql(f"select max_by(status, recorded_at) from {REGISTER}"
                    " where subject_pseudonym_id = :p", args={"p": pseudonym}).collect()[0][0]
    return row


def _register(spark: SparkSession, pseudonym: str, status: str) -> None:
    _ensure_register(spark)
    spark.sql(f"insert into {REGISTER} select :p, :s, current_timestamp()",
              args={"p": pseudonym, "s": status})


def _remove_rows(spark: SparkSession, relation: SubjectRelation, subject: Subject) -> int:
    """Rewrite the relation without the subject's rows; only the partitions
    holding them are rewritten. Idempotent: a rerun finds nothing to remove."""
    clause, args = _where(relation, subject)
    n = spark.sql(f"select count(*) from {_q(relation.relation)} where {clause}", args=args).collect()[0][0]
    if n == 0:
        return 0
    table = _q(relation.relation)
    partitions = [c.name for c in spark.catalog.listColumns(relation.relation) if c.isPartition]
    scratch = _q(relation.relation.split(".")[0] + "._erasure_scratch_" + relation.relation.split(".")[1])
    spark.sql(f"drop table if exists {scratch}")
    if partitions:
        cols = ", ".join(_q(p) for p in partitions)
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
            spec = ", ".join(f"{_q(p)} = {_literal(row[p])}" for p in partitions)
            spark.sql(f"alter table {table} drop if exists partition ({spec})")
    else:
        spark.sql(f"create table {scratch} using parquet as select * from {table} where not ({clause})",
                  args=args)
        spark.sql(f"insert overwrite table {table} select * from {scratch}")
    spark.sql(f"drop table if exists {scratch}")
    return int(n)


def erase(spark: SparkSession, user_id: str, landing: list[Path],
          rebuild: Callable[[], None], log: Callable[[str], None]) -> dict[str, int]:
    """Remove the subject everywhere, then rebuild the aggregates."""
    subject = resolve_subject(spark, user_id)
    relations = [r for r in subject_data.discover() if _exists(spark, r.relation)]
    status = register_status(spark, subject.pseudonym)
    held = {r.relation: subject_rows(spark, r, subject).count() for r in relations}
    in_files = scan_files(landing_dirs(landing), user_id, rewrite=False)
    if status is None and not any(held.values()) and not in_files:
        audit.record(spark, "erase", status="not_found", subject_pseudonym_id=subject.pseudonym)
        raise SubjectNotFound(f"no data held about user id {user_id!r}: nothing to erase")
    if status == "complete" and not any(held.values()) and not in_files:
        audit.record(spark, "erase", status="already_erased", subject_pseudonym_id=subject.pseudonym)
        log("already erased: nothing left to remove")
        return {}
    # Record the request first: from here on the loader skips the subject,
    # so a reload during the erasure cannot bring them back.
    if status != "in_progress":
        _register(spark, subject.pseudonym, "in_progress")
    removed: dict[str, int] = {}
    try:
        for relation in relations:
            n = _remove_rows(spark, relation, subject)
            if n:
                removed[relation.relation] = n
                log(f"removed {n} row(s) from {relation.relation}")
        for path, n in scan_files(landing_dirs(landing), user_id, rewrite=True).items():
            removed[path] = n
            log(f"removed {n} line(s) from {path}")
        rebuild()
        log("rebuilt the models (aggregates recomputed)")
        left = {r.relation: subject_rows(spark, r, subject).count() for r in relations}
        if any(left.values()):
            raise ErasureIncomplete(f"rows remain after erasure: {left}")
    except Exception as exc:
        audit.record(spark, "erase", status="failed", subject_pseudonym_id=subject.pseudonym,
                     relations=removed, details={"error": type(exc).__name__})
        raise ErasureIncomplete(
            f"erasure incomplete ({type(exc).__name__}); the request stays registered: "
            f"rerun `gdpr.py erase --user-id {user_id}` to finish") from exc
    _register(spark, subject.pseudonym, "complete")
    audit.record(spark, "erase", status="success", subject_pseudonym_id=subject.pseudonym,
                 relations=removed)
    return removed


def verify_erasure(spark: SparkSession, user_id: str, landing: list[Path]) -> dict[str, int]:
    """Rows holding the subject's raw id (as a whole field) or pseudonym in any string column
    of any relation of the warehouse (every schema, not only tagged
    relations) and in the managed landing files. Empty means erased."""
    subject = Subject(validate_user_id(user_id), pseudonym_of(spark, user_id))
    found: dict[str, int] = {}
    for schema in [d.name for d in spark.catalog.listDatabases()]:
        for table in spark.catalog.listTables(schema):
            name = f"{schema}.{table.name}"
            if table.isTemporary or name in ERASURE_RECORDS:
                continue
            columns = [f.name for f in spark.table(name).schema.fields
                       if f.dataType.simpleString() == "string"]
            if not columns:
                continue
            # The id as a whole field anywhere in the text (a quarantined
            # line holds it among other fields), the pseudonym as a value.
            predicate = " or ".join(
                f"{_q(c)} = :pseudonym or {_q(c)} rlike concat('(^|[^A-Za-z0-9_])\\\\Q', :uid, "
                f"'\\\\E([^A-Za-z0-9_]|$)')" for c in columns)
            n = spark.sql(f"select count(*) from {_q(name)} where {predicate}",
                          args={"uid": user_id, "pseudonym": subject.pseudonym}).collect()[0][0]
            if n:
                found[name] = int(n)
    found.update(scan_files(landing_dirs(landing), user_id, rewrite=False))
    audit.record(spark, "verify_erasure", status="clean" if not found else "found",
                 subject_pseudonym_id=subject.pseudonym, relations=found)
    return found


# --------------------------------------------------------------------------
# retention


def purge_expired(spark: SparkSession, as_of: date, log: Callable[[str], None]) -> dict[str, int]:
    """Remove rows older than each relation's declared retention."""
    removed: dict[str, int] = {}
    for relation in subject_data.discover():
        if relation.retention_days is None or not _exists(spark, relation.relation):
            continue
        if not relation.retention_column:
            raise UserError(f"{relation.resource}: retention_days needs retention_column")
        column = _q(relation.retention_column)
        clause = f"to_date({column}) < date_sub(:as_of, {int(relation.retention_days)})"
        args = {"as_of": as_of}
        n = spark.sql(f"select count(*) from {_q(relation.relation)} where {clause}", args=args).collect()[0][0]
        if n:
            table = _q(relation.relation)
            partitions = [c.name for c in spark.catalog.listColumns(relation.relation) if c.isPartition]
            if partitions == [relation.retention_column]:
                for row in spark.sql(f"select distinct {column} from {table} where {clause}", args=args).collect():
                    spark.sql(f"alter table {table} drop if exists partition ({column} = {_literal(row[0])})")
            else:
                scratch = _q(relation.relation.split(".")[0] + "._purge_scratch_" + relation.relation.split(".")[1])
                spark.sql(f"drop table if exists {scratch}")
                spark.sql(f"create table {scratch} using parquet as select * from {table} where not ({clause})",
                          args=args)
                spark.sql(f"insert overwrite table {table} select * from {scratch}")
                spark.sql(f"drop table if exists {scratch}")
            removed[relation.relation] = int(n)
            log(f"purged {n} row(s) older than {relation.retention_days} days from {relation.relation}")
    audit.record(spark, "purge_expired", status="success", relations=removed,
                 details={"as_of": as_of.isoformat()})
    return removed

