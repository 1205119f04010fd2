"""Consent changes load as dated events, and the next (incremental) build
honours them: a member who withdraws disappears from every anonymized and
analytics relation, a member who grants appears, and the aggregates are
recomputed without the withdrawn member, with no full refresh."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from conftest import current_consent, string_values
from dbt_helpers import run_dbt
from reference_pipeline import pseudonym

pytestmark = pytest.mark.mutates_warehouse


def _readings_in(spark) -> int:
    return spark.sql("select sum(readings_in) from analytics.fct_vitals_quality_daily").collect()[0][0]


def _vitals_of(spark, user_id: str) -> int:
    return spark.sql("select count(*) from raw.vitals where user_id = :u",
                     args={"u": user_id}).collect()[0][0]


def test_withdrawal_and_grant_take_effect_on_the_next_incremental_build(
        spark, built, landing: Path, test_root: Path, pseudonym_key: str):
    from sflux.ingest.loader import load_raw

    # Settle what the readings count below reads: earlier tests may have
    # reloaded raw data. The build after the consent drop is a full one.
    assert run_dbt(["run", "--select", "+fct_vitals_quality_daily"]).success
    consenting = current_consent(spark)
    profiles = {r[0] for r in spark.sql("select user_id from raw.users").collect()}
    # The last consenting member: test_gdpr erases the first ones.
    withdrawing = next(u for u in sorted(consenting, reverse=True) if _vitals_of(spark, u))
    granting = next(u for u in sorted(profiles - consenting) if _vitals_of(spark, u))
    gone, coming = pseudonym(pseudonym_key, withdrawing), pseudonym(pseudonym_key, granting)
    before = string_values(spark)
    assert gone in before and coming not in before
    readings_before = _readings_in(spark)
    withdrawn_readings = spark.sql(
        "select count(*) from anonymized.stg_wearables__vitals where user_pseudonym_id = :p",
        args={"p": gone}).collect()[0][0]
    assert withdrawn_readings > 0

    # A consent drop: the events plus the landing's unchanged subscriptions
    # and an empty vitals file (the loader needs both datasets in a load).
    drop = test_root / "landing-consent"
    drop.mkdir()
    shutil.copy(landing / "subscriptions.csv", drop / "subscriptions.csv")
    with (landing / "vitals.csv").open(encoding="utf-8") as source:
        header = source.readline()
    (drop / "vitals_none.csv").write_text(header, encoding="utf-8")
    with (drop / "consent_events_dpo.csv").open("w", encoding="utf-8", newline="") as target:
        writer = csv.writer(target, lineterminator="\n")
        writer.writerow(["user_id", "consent_type", "action", "event_ts"])
        writer.writerow([withdrawing, "analytics", "withdraw", "2030-01-01 00:00:00"])
        writer.writerow([granting, "analytics", "grant", "2030-01-01 00:00:00"])
    result = load_raw(spark, drop)
    assert result["consent_events"].loaded == 2 and result["consent_events"].quarantined == 0
    assert current_consent(spark) == (consenting - {withdrawing}) | {granting}

    incremental = run_dbt(["build", "--exclude", "resource_type:unit_test"])
    assert incremental.success
    after = string_values(spark)
    assert gone not in after, "the withdrawn member is still outside the raw zone"
    assert coming in after, "the member who granted consent is missing"
    # The withdrawn member's readings left the daily quality counts; the
    # granted member's (all dates) came in.
    granted_readings = spark.sql(
        "select count(*) from anonymized.stg_wearables__vitals where user_pseudonym_id = :p",
        args={"p": coming}).collect()[0][0]
    assert granted_readings > 0
    assert _readings_in(spark) == readings_before - withdrawn_readings + granted_readings
