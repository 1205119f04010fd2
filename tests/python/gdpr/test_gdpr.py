"""GDPR operations end to end, through scripts/gdpr.py's entry point, on the
shared build: export a subject and check the bundle is complete, erase them,
verify nothing is left (landing files in subdirectories and the export
bundle included) and the aggregates changed, check the audit rows, then
reload the old landing files and show the subject stays erased. Plus hostile
and unknown ids, a verification that could not check everything, an
erasure killed after each of its steps in turn, and retention purges."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from reference_pipeline import pseudonym, read_rows

from script_loader import load_script
from sflux.gdpr.residues import exports_dir

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


def test_hostile_and_unknown_ids_are_refused_and_audited(spark, built, capsys):
    users_before = spark.table("raw.users").count()
    hostile = "x' or '1'='1"
    assert gdpr_cli.main(["export", "--user-id", hostile], spark=spark) == 2
    assert "invalid --user-id" in capsys.readouterr().err
    assert gdpr_cli.main(["erase", "--user-id", hostile, "--no-rebuild"], spark=spark) == 2
    assert spark.table("raw.users").count() == users_before
    assert [a["status"] for a in _audit(spark, "export")][-1] == "rejected_invalid_id"
    assert [a["status"] for a in _audit(spark, "erase")][-1] == "rejected_invalid_id"

    assert gdpr_cli.main(["export", "--user-id", "user_999999999"], spark=spark) == 1
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
    #    with exactly the subject's rows, in a bundle under the exports
    #    directory (nowhere else) that says when it expires.
    assert gdpr_cli.main(["export", "--user-id", subject, "--out", str(tmp_path / "outside")],
                         spark=spark) == 2
    assert "is outside the exports directory" in capsys.readouterr().err
    assert not (tmp_path / "outside").exists()
    assert gdpr_cli.main(["export", "--user-id", subject], spark=spark) == 0
    [out] = [p.parent for p in exports_dir().rglob("manifest.json")]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    lifetime = datetime.fromisoformat(manifest["expires_at"]) - datetime.fromisoformat(manifest["generated_at"])
    assert lifetime == timedelta(days=7)
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

    # 2. Erase. The subject also has lines in a subdirectory of the managed
    #    landing (an archive of an older delivery): the scan is recursive.
    archived = managed_landing / "archive" / "2026-10" / "subscriptions.csv"
    archived.parent.mkdir(parents=True)
    shutil.copy(managed_landing / "subscriptions.csv", archived)
    assert gdpr_cli.main(["erase", "--user-id", subject, "--landing", str(managed_landing)],
                         spark=spark) == 0
    printed = capsys.readouterr().out
    assert "removed" in printed and "raw.vitals" in printed and "erased:" in printed
    assert f"line(s) from {archived}" in printed and "removed the export bundle" in printed
    assert not out.exists()
    assert not [row for row in read_rows([archived]) if row["user_id"] == subject]

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
    # Without landing directories it cannot say clean: it says what it did not check.
    capsys.readouterr()
    assert gdpr_cli.main(["verify-erasure", "--user-id", subject], spark=spark) == 3
    printed = capsys.readouterr().out
    assert "NOT CHECKED: landing directories: none named" in printed and "nothing of the subject" not in printed

    # 4. Audit rows: one per operation, pseudonym only.
    for operation, status in (("export", "success"), ("erase", "success"), ("verify_erasure", "clean"),
                              ("verify_erasure", "not_fully_checked")):
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


class Killed(BaseException):
    """A kill at a checkpoint, in this process: a BaseException, so none of
    erase()'s handlers runs, as with SIGKILL. (A real SIGKILL of a separate
    process: test_rotation_after_erasure.py.)"""


def test_an_erasure_killed_after_each_step_in_turn_is_finished_by_a_rerun(
        spark, built, subject, consenting_users, landing, pseudonym_key, tmp_path, monkeypatch, capsys):
    """Run after run, the erasure is killed at the first checkpoint not yet
    killed at (so each rerun resumes a kill one step later) until a run
    gets through. A failing step (the rebuild, once) is an error, not a
    kill. Nothing is ever reported as success before the end, and the end
    leaves nothing, the vault tokens included: the national id was only
    findable through raw.users, which the kill after `remove:raw.users`
    had already rewritten. Verification then still finds the victim in the
    users table, which only a rebuild cleans (it is keyed by a domain
    pseudonym and carries their vault token), until it is rebuilt."""
    from sflux.gdpr import erasure, register, subject_data

    from dbt_helpers import run_dbt
    from sflux.privacy.keys import domain_pseudonym

    profiles = {r[0] for r in spark.sql("select profile_pseudonym_id from anonymized.int_users_k_anonymized").collect()}
    victim = next(u for u in sorted(set(consenting_users) - {subject})
                  if domain_pseudonym(pseudonym(pseudonym_key, u), pseudonym_key, "users") in profiles)
    victim_pseudonym = pseudonym(pseudonym_key, victim)
    national_id = spark.sql("select national_id from raw.users where user_id = :u",
                            args={"u": victim}).collect()[0][0]
    assert _count(spark, "raw.token_vault", "token_value", national_id) == 1
    managed = tmp_path / "landing"
    managed.mkdir()
    for name in ("users.csv", "subscriptions.csv"):  # the small files: scans stay cheap
        shutil.copy(landing / name, managed / name)
    relations = subject_data.discover()
    monkeypatch.setattr(subject_data, "discover", lambda: relations)  # one `dbt parse`, not one per run
    steps = ["plan", *[f"remove:{r.relation}" for r in relations if spark.catalog.tableExists(r.relation)],
             "landing", "exports", "rebuild"]
    assert steps.index("remove:raw.users") < steps.index("remove:raw.token_vault")

    killed_at: list[str] = []
    rebuilds: list[str] = []

    def checkpoint(step: str) -> None:
        if step not in killed_at:
            killed_at.append(step)
            raise Killed(step)

    def rebuild() -> None:
        rebuilds.append("run")
        if len(rebuilds) == 1:
            raise RuntimeError("the rebuild failed")

    def successes() -> int:
        return sum(1 for a in _audit(spark, "erase")
                   if a["subject_pseudonym_id"] == victim_pseudonym and a["status"] == "success")

    for _ in range(len(steps) + 2):
        try:
            erasure.erase(spark, victim, [managed], rebuild=rebuild, log=print, checkpoint=checkpoint)
            break
        except Killed:
            pass
        except erasure.ErasureIncomplete as exc:
            assert "rerun `gdpr.py erase" in str(exc) and "the rebuild failed" in str(exc)
            assert _audit(spark, "erase")[-1]["status"] == "failed"
        assert register.latest(spark, victim_pseudonym)[0] == "in_progress"
        assert successes() == 0
    assert killed_at == steps
    assert register.latest(spark, victim_pseudonym)[0] == "complete" and successes() == 1
    assert _count(spark, "raw.token_vault", "token_value", national_id) == 0
    for table in RAW_WITH_USER_ID:
        assert _count(spark, table, "user_id", victim) == 0, table
    # The rebuild here did nothing, so the users table (keyed by a pseudonym
    # of its own domain, cleaned only by a rebuild) still holds the victim:
    # verification must say so, and be clean once that table is rebuilt.
    capsys.readouterr()
    assert gdpr_cli.main(["verify-erasure", "--user-id", victim, "--landing", str(managed)],
                         spark=spark) == 1
    assert "FOUND 1 occurrence(s) in anonymized.int_users_k_anonymized" in capsys.readouterr().out
    assert run_dbt(["run", "--select", "int_users_k_anonymized"]).success
    assert gdpr_cli.main(["verify-erasure", "--user-id", victim, "--landing", str(managed)],
                         spark=spark) == 0


def test_purge_expired_removes_rows_past_their_retention(spark, built, capsys):
    newest = spark.sql("select max(reading_date) from raw.vitals").collect()[0][0]
    as_of = newest + timedelta(days=90)  # keeps only the newest reading date
    # Two export bundles (as gdpr.py export writes them): one expired by then, one not.
    bundles = {}
    for name, expires in (("expired", as_of - timedelta(days=1)), ("current", as_of + timedelta(days=1))):
        bundles[name] = exports_dir() / name
        bundles[name].mkdir(parents=True)
        (bundles[name] / "manifest.json").write_text(json.dumps(
            {"subject": {"user_id": "someone"}, "expires_at": f"{expires.isoformat()}T00:00:00+00:00"}))
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
    assert not bundles["expired"].exists() and bundles["current"].exists()
    assert json.loads(entry["details"])["export_bundles_removed"] == 1
    shutil.rmtree(bundles["current"])
