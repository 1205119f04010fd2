"""The three privacy zones, on the shared end-to-end build: pseudonyms join
across the datasets that must join (and not the users table), consent is
honoured everywhere, tokens round-trip, the users table is k-anonymous, the leak
guard catches a planted leak, an undeclared raw column stops the build, the
key registry refuses an unrecorded rotation. The DP release is tested in
tests/python/dp/; a real rotation, audited and re-keying the erasure
register, in tests/python/gdpr/test_rotation_after_erasure.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import string_values
from dbt_helpers import dbt_outcome as _dbt_outcome
from reference_pipeline import pseudonym, read_rows
from sflux.privacy import keys

ANONYMIZED_TABLES = (
    "anonymized.stg_wearables__vitals",
    "anonymized.stg_app__events",
)
QUASI_IDENTIFIERS = ("age_band", "gender", "postcode_prefix", "region", "country")


def _pseudonyms(spark, table: str) -> set[str]:
    return {r[0] for r in spark.sql(f"select distinct user_pseudonym_id from {table}").collect()}


def _raw_users(spark) -> dict[str, dict]:
    return {r["user_id"]: r.asDict() for r in spark.table("raw.users").collect()}


def test_same_person_same_pseudonym_across_all_datasets(spark, built, landing: Path,
                                                         pseudonym_key: str, consenting_users):
    expected = {pseudonym(pseudonym_key, u): u for u in consenting_users}
    per_table = {t: _pseudonyms(spark, t) for t in ANONYMIZED_TABLES}
    for table, found in per_table.items():
        assert found, table
        assert found <= set(expected), f"{table} holds a pseudonym of no consenting member"
    # Someone present in both datasets is the same pseudonym in both.
    common = set.intersection(*per_table.values())
    assert common, "no member appears in both vitals and events"
    vitals_ids = {r["user_id"] for r in read_rows(sorted(landing.glob("vitals*.csv")))}
    assert {expected[p] for p in common} <= vitals_ids
    # The users table keys the same members in a domain of its own: no
    # value of it is anyone's subject pseudonym.
    profiles = {r[0] for r in spark.sql(
        "select profile_pseudonym_id from anonymized.int_users_k_anonymized").collect()}
    assert profiles and not profiles & set(expected)
    assert profiles <= {keys.domain_pseudonym(p, pseudonym_key, "users") for p in expected}


def test_members_without_consent_appear_nowhere_outside_raw(spark, built, pseudonym_key: str,
                                                            consenting_users):
    profiles = _raw_users(spark)
    refusing = set(profiles) - consenting_users
    assert refusing, "the test data must contain members without consent"
    # The consent events matter: some members withdrew after consenting in
    # their profile, others granted after refusing.
    withdrawn = {u for u in refusing if profiles[u]["consent_analytics"]}
    granted = {u for u in consenting_users if not profiles[u]["consent_analytics"]}
    assert withdrawn and granted, "the test data must contain consent withdrawals and grants"
    assert {pseudonym(pseudonym_key, u) for u in granted} & _pseudonyms(
        spark, "anonymized.stg_wearables__vitals"), "a member who granted consent is missing"
    assert not refusing & consenting_users
    leaked = {pseudonym(pseudonym_key, u) for u in refusing} & string_values(spark)
    assert not leaked, f"{len(leaked)} non-consenting members reached anonymized/analytics"


def test_anonymized_users_table_is_k_anonymous(spark, built, consenting_users):
    k = 5
    smallest = spark.sql(
        f"select min(n) from (select count(*) as n from anonymized.int_users_k_anonymized"
        f" group by {', '.join(QUASI_IDENTIFIERS)})").collect()[0][0]
    assert smallest >= k
    outcomes = {(r[0], r[1]): r[2] for r in spark.sql(
        "select k_anonymity_outcome, k_anonymity_level, n_users"
        " from analytics.fct_k_anonymity_outcomes").collect()}
    published = spark.table("anonymized.int_users_k_anonymized").count()
    # The outcome counts are a mart of people: small ones are suppressed.
    assert all(n is None or n >= k for n in outcomes.values())
    shown = [n for n in outcomes.values() if n is not None]
    assert sum(shown) <= len(consenting_users)
    if None not in outcomes.values():
        suppressed = sum(n for (outcome, _), n in outcomes.items() if outcome == "suppressed")
        assert published == len(consenting_users) - suppressed


def test_tokens_round_trip_through_the_audited_vault(spark, built, pseudonym_key: str,
                                                     consenting_users):
    from sflux.privacy import vault

    subjects = {keys.domain_pseudonym(pseudonym(pseudonym_key, u), pseudonym_key, "users"):
                pseudonym(pseudonym_key, u) for u in _raw_users(spark)}
    raw = {pseudonym(pseudonym_key, u): row for u, row in _raw_users(spark).items()}
    rows = [{"user_pseudonym_id": subjects[r[0]], "national_id_token": r[1]} for r in spark.sql(
        "select profile_pseudonym_id, national_id_token"
        " from anonymized.int_users_k_anonymized limit 3").collect()]
    assert rows
    before = spark.table("raw.privacy_audit_log").count() if spark.catalog.tableExists(
        "raw.privacy_audit_log") else 0
    for row in rows:
        found = vault.detokenize(spark, row["national_id_token"], reason="pytest round trip")
        assert found.value == raw[row["user_pseudonym_id"]]["national_id"]
        assert found.subject_pseudonym_id == row["user_pseudonym_id"]
    audit = spark.sql("select * from raw.privacy_audit_log order by occurred_at").collect()
    assert len(audit) == before + len(rows)
    for entry in audit[-len(rows):]:
        assert entry["operation"] == "detokenize" and entry["status"] == "success"
        assert entry["subject_pseudonym_id"] in {r["user_pseudonym_id"] for r in rows}
        # The audit row says why and for whom, never what.
        assert raw[entry["subject_pseudonym_id"]]["national_id"] not in entry["details"]
        assert json.loads(entry["relations_touched"]) == {"raw.token_vault": 1}
    # No token appears twice, and no raw national id left the vault's zone.
    national_ids = {row["national_id"] for row in raw.values()}
    assert not national_ids & string_values(spark)


def test_detokenize_rejects_hostile_and_unknown_tokens_and_audits_them(spark, built):
    from sflux.privacy import vault
    from sflux.core.errors import UserError

    before = spark.table("raw.privacy_audit_log").count() if spark.catalog.tableExists(
        "raw.privacy_audit_log") else 0
    with pytest.raises(UserError, match="not a vault token"):
        vault.detokenize(spark, "x' or '1'='1", reason="pytest")
    with pytest.raises(UserError, match="unknown token"):
        vault.detokenize(spark, "tok_" + "0" * 32, reason="pytest")
    statuses = [r[0] for r in spark.sql(
        "select status from raw.privacy_audit_log order by occurred_at").collect()][before:]
    assert statuses == ["rejected_malformed_token", "not_found"]


def test_audit_log_is_only_ever_appended_to():
    """Nothing in the project may update or delete audit rows."""
    repo = Path(__file__).resolve().parents[3]
    offenders = []
    for path in [*repo.glob("scripts/**/*.py"), *repo.glob("macros/**/*.sql"),
                 *repo.glob("models/**/*.sql")]:
        text = path.read_text(encoding="utf-8").lower()
        for statement in re.findall(r"(?:update|delete\s+from|truncate\s+table|drop\s+table|"
                                    r"insert\s+overwrite)[^;\n]{0,80}privacy_audit_log", text):
            offenders.append(f"{path.relative_to(repo)}: {statement}")
    assert not offenders


GUARD = "assert_no_pii_outside_raw"
# Leaks planted where the guard used to look (`anonymized`, `analytics`) and
# where it did not (a test-failure schema, a dev target's schema), shaped the
# ways it used to miss: inside a longer string, in another letter case, with
# other punctuation, as a number. Each is (relation, column, select over
# raw.users, the offence the guard must report).
PLANTED = (
    ("anonymized.leak_canary", "contact", "email", "equals a raw email"),
    ("dbt_test__audit.leak_canary", "note", "concat('failing row for ', user_id)",
     "contains a raw user_id"),
    ("dev_analytics.leak_canary", "note", "concat('Contact: ', upper(email), '.')",
     "contains a raw email"),
    ("analytics.leak_canary_handle", "handle", "replace(lower(full_name), ' ', '-')",
     "contains a raw person_name"),
    ("analytics.leak_canary_number", "phone_number",
     "cast(regexp_replace(phone, '[^0-9]', '') as bigint)", "equals a raw phone"),
)


def _stored_failures(result) -> list[tuple[str, str]]:
    """(relation the failing rows were stored in, test status) per test of a
    `dbt test --store-failures` result."""
    return [(r.node.relation_name, str(r.status)) for r in result.result.results
            if r.node.resource_type == "test"]


@pytest.mark.mutates_warehouse
def test_leak_guard_catches_leaks_in_every_schema_and_shape(spark, built):
    from dbt_helpers import run_dbt

    ok, message = _dbt_outcome(["test", "--select", GUARD])
    assert ok, f"the guard must pass on the clean build: {message}"
    schemas = {r[0] for r in spark.sql("show databases").collect()}
    created = sorted({t.split(".")[0] for t, *_ in PLANTED} - schemas)
    for schema in created:
        spark.sql(f"create database {schema}")
    for table, column, expr, _ in PLANTED:
        spark.sql(f"create table {table} using parquet as select {expr} as {column} from raw.users limit 3")
    # A value shaped like PII is caught even when it is not a raw value.
    spark.sql("create table analytics.leak_canary using parquet as"
              " select 'someone.else@example.org' as contact")
    stored = None
    try:
        result = run_dbt(["test", "--select", GUARD, "--store-failures"])
        [(stored, status)] = _stored_failures(result)
        assert status == "fail"
        assert stored.split(".")[0].strip("`") == "raw", "stored failures must stay in the raw zone"
        found = {(r[0], r[1], r[2]) for r in spark.sql(
            f"select relation_name, column_name, offence from {stored}").collect()}
    finally:
        for table, *_ in PLANTED:
            spark.sql(f"drop table if exists {table}")
        spark.sql("drop table if exists analytics.leak_canary")
        for schema in created:
            spark.sql(f"drop database if exists {schema}")
        if stored:
            spark.sql(f"drop table if exists {stored}")
    missed = [(t, c, o) for t, c, _, o in PLANTED if (t, c, o) not in found]
    assert not missed, f"the guard missed {missed}; it found {sorted(found)}"
    assert ("analytics.leak_canary", "contact", "email pattern") in found


@pytest.mark.mutates_warehouse
def test_store_failures_of_a_raw_source_test_stay_in_raw(spark, built):
    """`dbt test --store-failures` writes a failing test's rows to a table: for
    a test on a raw source they are raw ids (here every vitals user_id without
    a profile, from a warn-only relationships test), which must not reach a
    schema outside the raw zone."""
    from dbt_helpers import run_dbt

    orphans = {r[0] for r in spark.sql(
        "select distinct user_id from raw.vitals left anti join raw.users using (user_id)").collect()}
    assert orphans, "the attack needs a failing source test: vitals of members without a profile"
    result = run_dbt(["test", "--store-failures", "--select",
                      "source:wearables.vitals,test_name:relationships"])
    [(stored, status)] = _stored_failures(result)
    try:
        assert status == "warn"
        assert stored.split(".")[0].strip("`") == "raw"
        assert {r[0] for r in spark.sql(f"select * from {stored}").collect()} == orphans
        leaked = orphans & string_values(spark)
        assert not leaked, f"{len(leaked)} raw user ids stored outside the raw zone"
    finally:
        spark.sql(f"drop table if exists {stored}")


def test_every_test_stores_failures_in_raw_and_the_guard_runs_after_every_stored_model():
    """From the parsed project, no Spark: a test with its own `schema` would
    store raw failing rows outside the raw zone, and a stored model that the
    leak guard does not depend on could be built after the guard ran."""
    from dbt_helpers import run_dbt

    manifest = run_dbt(["parse"]).result
    tests = [n for n in manifest.nodes.values() if n.resource_type == "test"]
    outside = sorted(n.name for n in tests if n.schema != "raw")
    assert tests and not outside, f"these tests would store failures outside raw: {outside}"
    guard = next(n for n in tests if n.name == GUARD)
    missing = sorted(n.name for n in manifest.nodes.values()
                     if n.resource_type in ("model", "seed") and n.schema != "raw"
                     and n.config.materialized != "ephemeral" and "release" not in n.tags
                     and n.unique_id not in guard.depends_on.nodes)
    assert not missing, (f"add `-- depends_on: {{{{ ref('<name>') }}}}` to tests/privacy/{GUARD}.sql"
                         f" for {missing}")


@pytest.mark.mutates_warehouse
def test_undeclared_raw_column_stops_the_build_and_is_detected(spark, built, test_root: Path):
    from sflux.privacy import pii_detect

    spark.sql("create table raw.users_backup using parquet as select * from raw.users")
    try:
        spark.sql("alter table raw.users add columns (payout_iban string)")
        spark.sql("insert into raw.users select u.*, 'DE89370400440532013000'"
                  " from raw.users_backup as u limit 5")
        ok, message = _dbt_outcome(["run", "--select", "int_users_k_anonymized"])
        assert not ok
        assert "app.users.payout_iban" in message and "no declared privacy policy" in message
        report = pii_detect.scan(spark, "raw", Path(test_root) / "target" / "manifest.json", 200)
        undeclared = {(f.table.split(".")[-1], f.column, f.pii_type) for f in report.undeclared()}
        assert ("users", "payout_iban", "iban") in undeclared
    finally:
        spark.sql("drop table if exists raw.users")
        spark.sql("alter table raw.users_backup rename to raw.users")


@pytest.mark.mutates_warehouse
def test_key_version_change_needs_full_refresh_and_a_new_key(spark, built):
    registry = spark.sql("select key_version, key_fingerprint from raw.pseudonym_key_registry").collect()
    assert [r[0] for r in registry] == [1]
    assert re.fullmatch(r"[0-9a-f]{64}", registry[0][1])
    model = ["run", "--select", "int_users_k_anonymized"]
    ok, message = _dbt_outcome([*model, "--vars", '{"pseudonym_key_version": 2}'])
    assert not ok and "run `dbt build --full-refresh`" in message  # tables would mix two keys
    ok, message = _dbt_outcome([*model, "--full-refresh", "--vars", '{"pseudonym_key_version": 2}'])
    assert not ok and "rotate the key too" in message  # a new version with the old key
    assert spark.table("raw.pseudonym_key_registry").count() == 1


def test_every_build_is_audited_with_the_same_table_layout_as_the_scripts(spark, built):
    from sflux.privacy import audit

    rows = spark.sql("select * from raw.privacy_audit_log where operation = 'dbt_build'").collect()
    assert rows, "the on-run-end hook must audit the build"
    entry = rows[0]
    assert entry["status"] == "success" and entry["subject_pseudonym_id"] is None
    touched = json.loads(entry["relations_touched"])
    assert touched["analytics.fct_city_stress_matrix"] == spark.table("analytics.fct_city_stress_matrix").count()
    assert "anonymized.int_users_k_anonymized" in touched
    assert entry["row_count"] == sum(touched.values())
    assert entry["key_version"] == 1 and entry["actor"]
    # The first build registered key version 1: audited once, as a registration.
    keys = spark.sql("select * from raw.privacy_audit_log"
                     " where operation in ('key_registration', 'key_rotation')").collect()
    assert [(k["operation"], k["key_version"], k["status"]) for k in keys] == [("key_registration", 1, "success")]
    assert json.loads(keys[0]["relations_touched"]) == {"raw.pseudonym_key_registry": 1}
    assert keys[0]["subject_pseudonym_id"] is None and keys[0]["row_count"] == 1
    # dbt (macros/audit) and scripts/sflux/privacy/audit.py both create the table;
    # whichever runs first, the other must insert into the same layout.
    declared = re.findall(r"^\s+(\w+) (\w+),?$", audit._DDL, flags=re.M)
    actual = [(f.name, f.dataType.simpleString()) for f in spark.table("raw.privacy_audit_log").schema]
    assert actual == declared
