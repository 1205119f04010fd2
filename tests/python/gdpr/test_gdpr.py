"""GDPR operations end to end, through scripts/gdpr.py's entry point, on the
shared build: export a subject and check the bundle is complete, erase them,
verify nothing is left and the aggregates changed, check the audit rows, then
reload the old landing files and show the subject stays erased. Plus hostile
and unknown ids, an interrupted erasure, and retention purges."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from reference_pipeline import pseudonym

from script_loader import load_script

gdpr_cli = load_script("gdpr")  # scripts/gdpr.py

pytestmark = pytest.mark.mutates_warehouse

RAW_WITH_USER_ID = ("raw.users", "raw.vitals", "raw.events", "raw.subscriptions")


def _audit(spark, operation: str) -> list[dict]:
    return [r.asDict() for r in spark.sql(
        "select * from raw.privacy_audit_log where operation = :op order by occurred_at",
        args={"op": operation}).collect()]


def _count(spark, table: str, column: str, value: str) -> int:
    return spark.sql(f"select count(*) from {table} where {column} = :v", args={"v": value}).collect()[0][0]


@pytest.fixture(scope="module")
def subject(spark, built, consenting_users) -> str:
    """A consenting member present in every raw dataset."""
    common = set(consenting_users)
    for table in RAW_WITH_USER_ID:
        common &= {r[0] for r in spark.sql(f"select distinct user_id from {table}").collect()}
    assert common, "the test data must have a member in every dataset"
    return sorted(common)[0]


@pytest.fixture(scope="module")
def managed_landing(landing: Path, tmp_path_factory) -> Path:
    """A copy of the landing files, under management of the erasure (the
    original stays as 'old landing files' to reload afterwards)."""
    copy = tmp_path_factory.mktemp("managed") / "landing"
    shutil.copytree(landing, copy)
    return copy


def test_hostile_and_unknown_ids_are_refused_and_audited(spark, built, tmp_path, capsys):
    users_before = spark.table("raw.users").count()
    hostile = "x' or '1'='1"
    assert gdpr_cli.main(["export", "--user-id", hostile, "--out", str(tmp_path / "x")], spark=spark) == 2
    assert "invalid --user-id" in capsys.readouterr().err
    assert gdpr_cli.main(["erase", "--user-id", hostile, "--no-rebuild"], spark=spark) == 2
    assert spark.table("raw.users").count() == users_before
    assert [a["status"] for a in _audit(spark, "export")][-1] == "rejected_invalid_id"
    assert [a["status"] for a in _audit(spark, "erase")][-1] == "rejected_invalid_id"

    assert gdpr_cli.main(["export", "--user-id", "user_999999999", "--out", str(tmp_path / "y")],
                         spark=spark) == 1
    assert "no data held about user id 'user_999999999'" in capsys.readouterr().err
    unknown = _audit(spark, "export")[-1]
    assert unknown["status"] == "not_found" and "user_999999999" not in json.dumps(unknown, default=str)


def test_export_erase_verify_audit_reload(spark, built, subject, landing, managed_landing,
                                          pseudonym_key, tmp_path, capsys):
    from sflux.ingest.loader import load_raw

    subject_pseudonym = pseudonym(pseudonym_key, subject)
    # fct_k_anonymity_outcomes suppresses small counts, so the readings
    # landed (every date of the subject's readings) show the change.
    readings_before = spark.sql("select sum(readings_in) from analytics.fct_vitals_quality_daily").collect()[0][0]

    # 1. Export: every tagged relation that holds the subject has its file,
    #    with exactly the subject's rows.
    out = tmp_path / "bundle"
    assert gdpr_cli.main(["export", "--user-id", subject, "--out", str(out)], spark=spark) == 0
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    files = {f["relation"]: f for f in manifest["files"]}
    expected = {t: _count(spark, t, "user_id", subject) for t in RAW_WITH_USER_ID}
    expected.update({t: _count(spark, t, "user_pseudonym_id", subject_pseudonym) for t in (
        "anonymized.stg_wearables__vitals", "anonymized.stg_app__events")})
    for relation, n in expected.items():
        assert n > 0 and files[relation]["rows"] == n, relation
        payload = (out / files[relation]["file"]).read_bytes()
        assert hashlib.sha256(payload).hexdigest() == files[relation]["sha256"]
        rows = json.loads(payload)["rows"]
        assert len(rows) == n
    assert files["raw.token_vault"]["rows"] >= 1  # the national id's token
    national_id = spark.sql("select national_id from raw.users where user_id = :u",
                            args={"u": subject}).collect()[0][0]
    vault_rows = json.loads((out / files["raw.token_vault"]["file"]).read_text())["rows"]
    assert {r["token_value"] for r in vault_rows} == {national_id}

    # 2. Erase.
    assert gdpr_cli.main(["erase", "--user-id", subject, "--landing", str(managed_landing)],
                         spark=spark) == 0
    printed = capsys.readouterr().out
    assert "removed" in printed and "raw.vitals" in printed and "erased:" in printed

    # 3. Nothing left anywhere; the aggregates changed.
    assert gdpr_cli.main(["verify-erasure", "--user-id", subject, "--landing", str(managed_landing)],
                         spark=spark) == 0
    for table in RAW_WITH_USER_ID:
        assert _count(spark, table, "user_id", subject) == 0
    assert _count(spark, "raw.token_vault", "token_value", national_id) == 0
    readings_after = spark.sql("select sum(readings_in) from analytics.fct_vitals_quality_daily").collect()[0][0]
    assert readings_after < readings_before
    # The untouched original landing dir still holds them: verification sees it.
    assert gdpr_cli.main(["verify-erasure", "--user-id", subject, "--landing", str(landing)],
                         spark=spark) == 1

    # 4. Audit rows: one per operation, pseudonym only.
    for operation, status in (("export", "success"), ("erase", "success"), ("verify_erasure", "clean")):
        entry = [a for a in _audit(spark, operation) if a["status"] == status][-1]
        assert entry["subject_pseudonym_id"] == subject_pseudonym
        assert subject not in json.dumps(entry, default=str)
        assert entry["git_commit"] and entry["actor"] and entry["key_version"] == 1
    erase_entry = [a for a in _audit(spark, "erase") if a["status"] == "success"][-1]
    assert json.loads(erase_entry["relations_touched"])["raw.vitals"] == expected["raw.vitals"]

    # 5. Reloading the old landing files does not bring them back.
    load_raw(spark, landing)
    for table in RAW_WITH_USER_ID:
        assert _count(spark, table, "user_id", subject) == 0, table
    assert gdpr_cli.main(["verify-erasure", "--user-id", subject, "--landing", str(managed_landing)],
                         spark=spark) == 0

    # Erasing again is harmless.
    assert gdpr_cli.main(["erase", "--user-id", subject, "--landing", str(managed_landing)],
                         spark=spark) == 0
    assert "already erased" in capsys.readouterr().out


def test_an_interrupted_erasure_is_not_success_and_a_rerun_completes_it(spark, built, subject,
                                                                        consenting_users, capsys):
    from sflux.gdpr import subject_rights as gdpr

    victim = sorted(set(consenting_users) - {subject})[0]
    subject_pseudonym = gdpr.pseudonym_of(spark, victim)

    def crash() -> None:
        raise RuntimeError("killed during the rebuild")

    with pytest.raises(gdpr.ErasureIncomplete, match="rerun"):
        gdpr.erase(spark, victim, [], rebuild=crash, log=print)
    assert gdpr.register_status(spark, subject_pseudonym) == "in_progress"
    assert _audit(spark, "erase")[-1]["status"] == "failed"
    assert gdpr_cli.main(["erase", "--user-id", victim, "--no-rebuild"], spark=spark) == 0
    assert gdpr.register_status(spark, subject_pseudonym) == "complete"
    assert gdpr_cli.main(["verify-erasure", "--user-id", victim], spark=spark) == 0


def test_purge_expired_removes_rows_past_their_retention(spark, built, capsys):
    newest = spark.sql("select max(reading_date) from raw.vitals").collect()[0][0]
    as_of = newest + timedelta(days=90)  # keeps only the newest reading date
    before = spark.sql("select count(*) from raw.vitals where reading_date < :d",
                       args={"d": newest}).collect()[0][0]
    assert before > 0
    assert gdpr_cli.main(["purge-expired", "--as-of", as_of.isoformat()], spark=spark) == 0
    assert f"purged {before} row(s) older than 90 days from raw.vitals" in capsys.readouterr().out
    assert spark.sql("select count(*) from raw.vitals where reading_date < :d",
                     args={"d": newest}).collect()[0][0] == 0
    assert spark.sql("select count(*) from anonymized.stg_wearables__vitals where reading_date < :d",
                     args={"d": newest}).collect()[0][0] == 0
    entry = _audit(spark, "purge_expired")[-1]
    assert json.loads(entry["relations_touched"])["raw.vitals"] == before
