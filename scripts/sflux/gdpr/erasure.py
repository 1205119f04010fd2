"""Erasure (Art. 17) and its verification.

An erasure is correct when killed between any two steps. Its plan (the
subject's tokenized values and the landing files holding them, encrypted in
raw.erasure_register, see register.py) is recorded before anything is
deleted; every step is idempotent; a rerun resumes from the plan, so what
a finished step deleted (raw.users, which held the national id) is not
needed to finish the others (the vault tokens). Only when every step is
done and nothing is left is the request marked complete.

The steps, in order, each followed by a checkpoint named after it: `plan`,
`remove:<relation>` per tagged relation (raw zone first, then the vault,
then the anonymized tables), `landing`, `exports`, `rebuild`. Setting
SANTEFLUX_ERASE_FAULT_AFTER=<step> makes the process SIGKILL itself at that
checkpoint: the crash-safety test kills a real process that way.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Callable

from pyspark.sql import SparkSession

from sflux.gdpr import register, residues, subject_data
from sflux.core.spark import table_exists
from sflux.gdpr.subject_rights import (
    SubjectNotFound,
    checked_key_version,
    holds_as_field,
    pseudonym_of,
    quoted,
    remove_rows,
    resolve_subject,
    subject_rows,
    validate_user_id,
)
from sflux.privacy import audit, keys
from sflux.privacy.vault import VAULT_TABLE

FAULT_ENV = "SANTEFLUX_ERASE_FAULT_AFTER"
# Records of the erasure itself: they keep the pseudonym on purpose (proof
# that the request was honoured), so verification does not count them.
ERASURE_RECORDS = (register.REGISTER, audit.AUDIT_TABLE)


class ErasureIncomplete(Exception):
    """An erasure step failed; the register still says in_progress."""


def auditable(places: dict[str, int]) -> dict[str, int]:
    """Counts per place for the audit log: relations by name, files outside
    the warehouse only as totals (a path may hold anything, even an id)."""
    counts: dict[str, int] = {}
    for place, n in places.items():
        key = "files outside the warehouse" if os.sep in place else place
        counts[key] = counts.get(key, 0) + n
    return counts


def kill_at_fault_point(step: str) -> None:
    """The checkpoint of a real run: SIGKILL this process if FAULT_ENV names `step`."""
    if os.environ.get(FAULT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _vault_tokens(spark: SparkSession, values: list[str]) -> list[str]:
    """The vault's tokens of the subject's tokenized values: the tokens the
    anonymized zone carries in their place."""
    if not values or not table_exists(spark, VAULT_TABLE):
        return []
    params = {f"v{i}": v for i, v in enumerate(values)}
    return sorted(r[0] for r in spark.sql(
        f"select token from {VAULT_TABLE} where token_value in ({', '.join(':' + k for k in params)})",
        args=params).collect())


def _holds_anything(spark: SparkSession, relations, subject, in_files: dict[str, int]) -> bool:
    return bool(in_files or residues.scan_exports(subject.user_id, subject.pseudonym).found
                or any(subject_rows(spark, r, subject).count() for r in relations))


def erase(spark: SparkSession, user_id: str, landing: list[Path] | None,
          rebuild: Callable[[], None], log: Callable[[str], None],
          checkpoint: Callable[[str], None] = kill_at_fault_point) -> dict[str, int]:
    """Remove the subject everywhere, then rebuild the aggregates; returns
    place -> rows/lines/files removed."""
    version = checked_key_version(spark, "erase")
    pseudonym = pseudonym_of(spark, validate_user_id(user_id))
    status, planned = register.latest(spark, pseudonym)
    planned = planned or register.Plan()
    subject = resolve_subject(spark, user_id, planned.tokenized_values)
    relations = [r for r in subject_data.discover() if table_exists(spark, r.relation)]
    dirs = residues.landing_dirs(landing)
    in_files = residues.check_landing(dirs, planned.landing_files, user_id, pseudonym).found
    # A request in progress is finished whatever is left; otherwise look first.
    if status != register.IN_PROGRESS and not _holds_anything(spark, relations, subject, in_files):
        if status is None:
            audit.record(spark, "erase", status="not_found", subject_pseudonym_id=pseudonym)
            raise SubjectNotFound(f"no data held about user id {user_id!r}: nothing to erase")
        if status == register.COMPLETE:
            audit.record(spark, "erase", status="already_erased", subject_pseudonym_id=pseudonym)
            log("already erased: nothing left to remove")
            return {}
    # The plan before any deletion: from here on the loader skips the
    # subject, and a rerun knows every value and file to clean.
    data_files = {str(p) for p in residues.landing_files(dirs, planned.landing_files)[0]}
    plan = planned.merged(register.Plan(subject.tokenized_values, sorted(set(in_files) & data_files),
                                        _vault_tokens(spark, subject.tokenized_values)))
    if status != register.IN_PROGRESS or plan != planned:
        register.record(spark, pseudonym, user_id, register.IN_PROGRESS, plan, version)
    checkpoint("plan")
    removed: dict[str, int] = {}
    try:
        for relation in relations:
            n = remove_rows(spark, relation, subject)
            if n:
                removed[relation.relation] = n
                log(f"removed {n} row(s) from {relation.relation}")
            checkpoint(f"remove:{relation.relation}")
        files, _ = residues.landing_files(dirs, plan.landing_files)
        for path, n in residues.scan_landing(files, user_id, rewrite=True).items():
            removed[path] = n
            log(f"removed {n} line(s) from {path}")
        checkpoint("landing")
        for bundle, n in residues.remove_bundles(user_id, pseudonym).items():
            removed[bundle] = n
            log(f"removed the export bundle {bundle} ({n} file(s))")
        checkpoint("exports")
        rebuild()
        log("rebuilt the models (aggregates recomputed)")
        checkpoint("rebuild")
        left = {r.relation: n for r in relations if (n := subject_rows(spark, r, subject).count())}
        left.update(residues.check_landing(dirs, plan.landing_files, user_id, pseudonym).found)
        left.update(residues.scan_exports(user_id, pseudonym).found)
        if left:
            raise ErasureIncomplete(f"the subject is still in {sorted(left)}; remove what is not a "
                                    "tagged relation, landing line or export bundle by hand")
    except Exception as exc:
        audit.record(spark, "erase", status="failed", subject_pseudonym_id=pseudonym,
                     relations=auditable(removed), details={"error": type(exc).__name__})
        raise ErasureIncomplete(
            f"erasure incomplete ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            f"the request stays registered: rerun `gdpr.py erase --user-id {user_id}` to finish") from exc
    register.record(spark, pseudonym, user_id, register.COMPLETE, plan, version)
    audit.record(spark, "erase", status="success", subject_pseudonym_id=pseudonym,
                 relations=auditable(removed))
    return removed


def _table_hits(spark: SparkSession, name: str, user_id: str, exact: list[str]) -> int:
    """Rows of one relation holding, in any string column, the raw id as a
    whole field anywhere in a text (a quarantined line holds it among other
    fields) or one of the `exact` values (pseudonyms, tokenized values,
    tokens)."""
    columns = [f.name for f in spark.table(name).schema.fields if f.dataType.simpleString() == "string"]
    if not columns:
        return 0
    values = {f"v{i}": value for i, value in enumerate(exact)}
    in_values = ", ".join(":" + k for k in values)
    predicate = " or ".join(f"{quoted(c)} in ({in_values}) or {holds_as_field(quoted(c), 'uid')}"
                            for c in columns)
    return int(spark.sql(f"select count(*) from {quoted(name)} where {predicate}",
                         args={"uid": user_id, **values}).collect()[0][0])


def verify_erasure(spark: SparkSession, user_id: str, landing: list[Path] | None) -> residues.Scan:
    """Where anything of the subject is left: every string column of every
    relation of the warehouse (every schema, not only tagged relations), the
    managed landing files, the export bundles; and what could not be
    checked. Clean means both are empty."""
    checked_key_version(spark, "verify_erasure")
    pseudonym = pseudonym_of(spark, validate_user_id(user_id))
    status, planned = register.latest(spark, pseudonym)
    planned = planned or register.Plan()
    subject = resolve_subject(spark, user_id, planned.tokenized_values)
    # The subject under every key the zones use: their pseudonym, their
    # pseudonym in each domain (a table keyed so is only cleaned by the
    # rebuild), their tokenized values and the tokens that replaced them.
    domains = subject_data.pseudonym_domains()
    in_domains = list(spark.sql("select " + ", ".join(keys.domain_pseudonym_sql(":p", d) for d in domains),
                                args={"p": pseudonym}).first()) if domains else []
    exact = [pseudonym, *in_domains, *subject.tokenized_values,
             *sorted({*planned.tokens, *_vault_tokens(spark, subject.tokenized_values)})]
    scan = residues.Scan()
    for schema in [d.name for d in spark.catalog.listDatabases()]:
        for table in spark.catalog.listTables(schema):
            name = f"{schema}.{table.name}"
            if not table.isTemporary and name not in ERASURE_RECORDS:
                if n := _table_hits(spark, name, user_id, exact):
                    scan.found[name] = n
    if status == register.IN_PROGRESS:
        scan.found[f"{register.REGISTER}: the erasure is still in progress, rerun erase"] = 1
    scan.add(residues.check_landing(residues.landing_dirs(landing), planned.landing_files, user_id, pseudonym))
    scan.add(residues.scan_exports(user_id, pseudonym))
    verdict = "found" if scan.found else "not_fully_checked" if scan.unchecked else "clean"
    audit.record(spark, "verify_erasure", status=verdict, subject_pseudonym_id=pseudonym,
                 relations=auditable(scan.found),
                 details={"not_checked": len(scan.unchecked)})
    return scan
