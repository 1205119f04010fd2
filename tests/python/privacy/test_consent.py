"""Consent changes load as dated events, and the next (incremental) build
honours them: a member who withdraws disappears from every anonymized and
analytics relation, a member who grants appears, and the aggregates are
recomputed without the withdrawn member, with no full refresh.

Consent fails closed against the lines that used to keep a member in: a
grant dated 2099 (it would outrank a real withdrawal) and withdrawals
spelled `WITHDRAW` or `revoke` (they were quarantined and ignored)."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from pathlib import Path

import pytest

from conftest import current_consent, string_values
from dbt_helpers import run_dbt
from reference_pipeline import pseudonym

pytestmark = pytest.mark.mutates_warehouse


def _readings_in(spark) -> int:
    """Readings of consenting members, from the incremental daily counts.
    The quality mart cannot be summed for this: it suppresses a date whose
    members are too few, and which dates those are moves with consent."""
    return spark.sql("select sum(readings_in) from anonymized.int_vitals_quality_counted").collect()[0][0]


def _assert_mart_publishes_the_counts(spark) -> None:
    """Every date the quality mart publishes shows the incremental count."""
    rows = spark.sql(
        "select mart.reading_date, mart.readings_in, counted.readings_in"
        " from analytics.fct_vitals_quality_daily as mart"
        " inner join anonymized.int_vitals_quality_counted as counted"
        " on mart.reading_date = counted.reading_date"
        " where not mart.is_suppressed").collect()
    assert rows, "the quality mart publishes no date"
    assert [r for r in rows if r[1] != r[2]] == []


def _readings_of(spark, pseudonym_id: str) -> int:
    return spark.sql(
        "select count(*) from anonymized.stg_wearables__vitals where user_pseudonym_id = :p",
        args={"p": pseudonym_id}).collect()[0][0]


def test_withdrawal_and_grant_take_effect_on_the_next_incremental_build(
        spark, built, landing: Path, test_root: Path, pseudonym_key: str):
    from sflux.ingest.loader import load_raw

    # Settle what the readings count below reads: earlier tests may have
    # reloaded raw data. The build after the consent drop is a full one.
    assert run_dbt(["run", "--select", "+fct_vitals_quality_daily"]).success
    consenting = current_consent(spark)
    profiles = {r[0] for r in spark.sql("select user_id from raw.users").collect()}
    with_vitals = {r[0] for r in spark.sql("select distinct user_id from raw.vitals").collect()}
    # The last consenting members: test_gdpr erases the first ones.
    withdrawing, future_granting, upper_withdrawing, revoking = sorted(
        consenting & with_vitals, reverse=True)[:4]
    leaving = (withdrawing, future_granting, upper_withdrawing, revoking)
    granting = sorted((profiles - consenting) & with_vitals)[0]
    gone = {pseudonym(pseudonym_key, u) for u in leaving}
    coming = pseudonym(pseudonym_key, granting)
    before = string_values(spark)
    assert gone <= before and coming not in before
    readings_before = _readings_in(spark)
    leaving_readings = [_readings_of(spark, p) for p in gone]
    assert min(leaving_readings) > 0

    # A consent drop: the events plus the landing's unchanged subscriptions
    # and an empty vitals file (the loader needs both datasets in a load).
    drop = test_root / "landing-consent"
    drop.mkdir()
    shutil.copy(landing / "subscriptions.csv", drop / "subscriptions.csv")
    with (landing / "vitals.csv").open(encoding="utf-8") as source:
        header = source.readline()
    (drop / "vitals_none.csv").write_text(header, encoding="utf-8")
    # Later than every generated event, and not in the future.
    now = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S")
    lines = [
        [withdrawing, "analytics", "withdraw", now],
        [granting, "analytics", "grant", now],
        # The attacks: a grant dated 2099 outranked this real withdrawal ...
        [future_granting, "analytics", "grant", "2099-01-01 00:00:00"],
        [future_granting, "analytics", "withdraw", now],
        # ... and withdrawals in words the contract does not know were ignored.
        [upper_withdrawing, "analytics", "WITHDRAW", now],
        [revoking, "analytics", "revoke", now],
    ]
    with (drop / "consent_events_dpo.csv").open("w", encoding="utf-8", newline="") as target:
        writer = csv.writer(target, lineterminator="\n")
        writer.writerow(["user_id", "consent_type", "action", "event_ts"])
        writer.writerows(lines)
    result = load_raw(spark, drop)
    assert result["consent_events"].loaded == 3 and result["consent_events"].quarantined == 3
    reasons = dict(spark.sql(
        "select line_number, reason from raw.quarantine where source_file = 'consent_events_dpo.csv'"
    ).collect())
    assert reasons[4].startswith("event_ts in the future")
    assert reasons[6] == reasons[7] == "unknown action"
    assert current_consent(spark) == (consenting - set(leaving)) | {granting}

    # The models of the next build; what they hold is asserted below, and
    # the data tests already ran on the shared build.
    incremental = run_dbt(["run"])
    assert incremental.success
    holds = dict(spark.sql(
        "select user_id, consent_hold_reason from raw.base_app__analytics_consent"
        " where consent_hold_reason is not null").collect())
    assert {u: holds.get(u) for u in (future_granting, upper_withdrawing, revoking)} == dict.fromkeys(
        (future_granting, upper_withdrawing, revoking), "quarantined consent line")
    after = string_values(spark)
    assert not gone & after, "a withdrawn member is still outside the raw zone"
    assert coming in after, "the member who granted consent is missing"
    # The withdrawn members' readings left the daily quality counts; the
    # granted member's (all dates) came in.
    granted_readings = _readings_of(spark, coming)
    assert granted_readings > 0
    assert _readings_in(spark) == readings_before - sum(leaving_readings) + granted_readings
    _assert_mart_publishes_the_counts(spark)
