"""A detokenization's --reason is stored in the audit log, so a reason that
holds personal data is refused: the PII rules applied to free text, then the
attack through scripts/detokenize.py on the shared build (a reason naming
the member, their national id, their email), each refused, audited without
the reason, and with no value printed."""

from __future__ import annotations

import json

import pytest

from script_loader import load_script
from sflux.privacy.free_text import id_like_words, pii_in_text


@pytest.mark.parametrize("text, kinds", [
    ("DPO request 2026-17", []),
    ("Case #42, Art. 15 request, ref. 2026/17.", []),
    ("ticket 12345 of 2026-03-01 (art. 17)", []),
    ("asked by user_000042 on the phone", ["user_id"]),
    ("device dev-0a1b2c3d replaced", ["device_id"]),
    ("reply to jane.doe@example.org", ["email"]),
    ("call back on +33 6 12 34 56 78", ["phone"]),
    ("refund to DE89370400440532013000", ["iban"]),
    ("national id RMTLND81C19F205I checked", ["national_id"]),
    ("AHV 756.6956.5029.80 of the member", ["national_id"]),
    ("lives at Hauptstraße 5, Berlin", ["street_address"]),
    ("from 192.168.10.77 at night", ["ip_address"]),
])
def test_personal_data_in_free_text_is_found(text, kinds):
    assert set(kinds) <= set(pii_in_text(text)), text
    if not kinds:
        assert pii_in_text(text) == []


def test_known_identifiers_are_found_as_whole_words():
    assert pii_in_text("request about m-77 again", known=["m-77"]) == ["known_identifier"]
    assert pii_in_text("request about m-770 again", known=["m-77"]) == []
    assert "m-77" in id_like_words("request about m-77, again.")


def test_detokenize_refuses_a_reason_holding_personal_data(spark, built, capsys):
    from sflux.privacy import vault

    detokenize = load_script("detokenize")
    token, user_id, national_id, email = spark.sql(
        "select vault.token, users.user_id, users.national_id, users.email from raw.token_vault as vault"
        " inner join raw.users as users on vault.token_value = users.national_id limit 1").first()
    assert vault._known_ids(spark, ["nobody_at_all", user_id]) == [user_id]
    for reason in (f"request of {user_id}", f"check {national_id} please", f"asked by {email}"):
        assert detokenize.main(["--token", token, "--reason", reason], spark=spark) == 1
        captured = capsys.readouterr()
        assert captured.out == "" and "--reason holds personal data" in captured.err
        entry = spark.sql("select * from raw.privacy_audit_log order by occurred_at desc limit 1").first()
        assert entry["status"] == "rejected_pii_in_reason" and entry["operation"] == "detokenize"
        assert reason not in json.dumps(entry.asDict(), default=str)
    assert detokenize.main(["--token", token, "--reason", "DPO request 2026-17"], spark=spark) == 0
    assert capsys.readouterr().out.strip() == national_id
