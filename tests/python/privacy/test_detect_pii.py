"""The PII scanner (scripts/detect_pii.py, scripts/sflux/privacy/pii_detect.py) on a
schema of planted tables: one column per PII type with multi-country values,
negative controls that must stay silent, and fake dbt manifests declaring
(or not) the columns' treatments."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from script_loader import load_script

SCHEMA = "pii_probe"
ROWS = 24

# column -> values (cycled over ROWS rows); every list is realistic data.
POSITIVES: dict[str, list[str]] = {
    "email": ["anna.mueller@example.de", "jean.dupont@mail.fr", "m.rossi@libero.it",
              "piotr.nowak@wp.pl", "sven.karlsson@telia.se", "j.devries@ziggo.nl"],
    # no name hint: found by the values alone
    "extra_info": ["giulia.bianchi@gmail.com", "lars.jensen@mail.dk", "eva.novak@seznam.cz"],
    "phone": ["+33 6 12 34 56 78", "+49 30 12345678", "0612345678", "+39 06 6982 1234",
              "+48 601 234 567", "+46 8 123 456 78", "+41 (0)44 668 18 00", "020 7946 0958"],
    "client_ip": ["81.2.69.142", "192.0.2.15", "10.0.0.7", "203.0.113.200"],
    "last_seen_from": ["2001:db8::1", "fe80::1ff:fe23:4567:890a",
                       "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "::1"],
    "national_id": ["2 55 08 14 168 025 38", "86095742719", "RSSMRA85T10A562S", "12345678Z",
                    "44051401359", "111222333", "756.9217.0769.85", "811228-9874", "551018/5824"],
    "reference": ["DE89370400440532013000", "FR1420041010050500013M02606", "NL91ABNA0417164300",
                  "IT60X0542811101000000123456", "ES9121000418450200051332", "BE68 5390 0754 7034"],
    "card_number": ["4111111111111111", "5500 0000 0000 0004", "3782 822463 10005",
                    "6011111111111117", "5555-5555-5555-4444"],
    "geburtsdatum": ["12.03.1985", "01.11.1962", "30.06.2001", "1979-08-17"],
    "postal_code": ["75001", "10115", "1012 AB", "00-950", "114 55", "SW1A 1AA", "20121", "28013"],
    "full_name": ["Anna Müller", "Jean-Pierre Dupont", "María José García López", "Jan van der Berg",
                  "Zofia Wójcik", "Åsa Lindström", "Malpighi, Lorenzo", "Søren Kierkegaard"],
    "home_address": ["12 rue de Rivoli", "Hauptstraße 5", "Via Roma 12", "Calle Mayor 3",
                     "ul. Długa 5", "Laan van Meerdervoort 5", "Drottninggatan 3",
                     "Vesterbrogade 10", "Kerkstraat 12", "5 avenue Foch",
                     "Vicolo Seddio, 26", "Hamzapad 350"],
    "user_id": ["user_001", "user_002", "user_003"],
    "device_id": ["dev-0000abcd", "dev-00001f2e"],
    "city": ["Paris", "Den Haag", "Frankfurt am Main", "Kraków", "Göteborg"],
    "gender": ["F", "M", "X"],
}

EXPECTED: dict[str, tuple[str, str]] = {
    "email": ("email", "HIGH"),
    "extra_info": ("email", "HIGH"),
    "phone": ("phone", "HIGH"),
    "client_ip": ("ip_address", "MEDIUM"),
    "last_seen_from": ("ip_address", "MEDIUM"),
    "national_id": ("national_id", "HIGH"),
    "reference": ("iban", "HIGH"),
    "card_number": ("credit_card", "HIGH"),
    "birth_date": ("date_of_birth", "MEDIUM"),
    "geburtsdatum": ("date_of_birth", "MEDIUM"),
    "postal_code": ("postcode", "MEDIUM"),
    "full_name": ("person_name", "HIGH"),
    "home_address": ("street_address", "HIGH"),
    "user_id": ("identifier", "MEDIUM"),
    "device_id": ("identifier", "MEDIUM"),
    "city": ("city", "LOW"),
    "gender": ("gender", "LOW"),
}

NEGATIVES: dict[str, list[str]] = {
    # hex HMAC pseudonyms, even under an identifier's name
    "customer_id": ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                    "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"],
    "contact_email": ["jo***@***.com", "an***@***.de"],
    "display_name": ["J*** D***", "A*** M***"],
    "card_last4": ["***1234", "***9876"],
    "ip_network": ["192.168.1.0/24", "10.0.0.0/8"],
    "iban_token": ["tok_3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b", "tok_0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"],
    # capitalised words without a name hint: browsers, not people
    "browser": ["Chrome Mobile", "Samsung Internet", "Safari Mobile"],
    "notes": ["Felt dizzy after the run", "Sensor strap loose", "Ran 5 km in the park",
              "call me back tomorrow"],
    # 16 digits failing Luhn, 11 digits failing the PESEL and Steuer-ID checks
    "order_number": ["4111111111111112", "1234567812345678", "9876543210987654"],
    "reading_ref": ["12345678901", "98765432109", "55555555551"],
}


def _cycle(values: list[str], row: int) -> str:
    return values[row % len(values)]


@pytest.fixture(scope="module")
def probe(spark):
    """The planted schema: `people` (every PII type and the negative
    controls) and `events` (no PII, no declaration)."""
    spark.sql(f"drop database if exists {SCHEMA} cascade")
    spark.sql(f"create database {SCHEMA}")
    columns = {**POSITIVES, **NEGATIVES}
    rows = []
    for row in range(ROWS):
        record = {name: _cycle(values, row) for name, values in columns.items()}
        record["birth_date"] = dt.date(1950 + row, 1 + row % 12, 1 + row)
        record["session_date"] = dt.date(2024, 5, 1 + row)
        record["heart_rate"] = 60 + row
        rows.append(record)
    spark.createDataFrame(rows).write.format("parquet").saveAsTable(f"{SCHEMA}.people")
    spark.createDataFrame([(i, "login") for i in range(5)], "event_id bigint, kind string") \
        .write.format("parquet").saveAsTable(f"{SCHEMA}.events")
    yield SCHEMA
    spark.sql(f"drop database if exists {SCHEMA} cascade")


def _manifest(path: Path, declared: dict[str, str]) -> Path:
    """A minimal manifest: one source for pii_probe.people declaring
    `declared` (column -> treatment), alternating between `meta` and
    `config.meta` as dbt 1.11 may use either, plus a same-named model in
    another schema whose declarations must not count."""
    columns = {}
    for index, (column, treatment) in enumerate(sorted(declared.items())):
        meta = {"pii": "x", "treatment": treatment}
        columns[column] = {"meta": meta, "config": {"meta": {}}} if index % 2 else \
            {"meta": {}, "config": {"meta": meta}}
    columns["session_date"] = {"meta": {}, "config": {"meta": {}}}
    everything = {c: {"meta": {"treatment": "keep"}} for c in [*POSITIVES, *NEGATIVES]}
    manifest = {
        "sources": {
            "source.probe.crm.people": {
                "resource_type": "source", "schema": SCHEMA, "identifier": "people",
                "name": "people", "columns": columns,
            }
        },
        "nodes": {
            "model.probe.people": {
                "resource_type": "model", "schema": "elsewhere", "alias": "people",
                "name": "people", "columns": everything,
            }
        },
    }
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def report(spark, probe, tmp_path_factory):
    from sflux.privacy.pii_detect import scan

    manifest = _manifest(tmp_path_factory.mktemp("pii") / "manifest.json", {})
    return scan(spark, probe, manifest, sample_rows=2000)


def _by_column(report) -> dict[str, object]:
    return {f.column: f for f in report.findings if f.table == "people"}


def test_detects_each_type_with_its_level(report):
    found = _by_column(report)
    assert {c: (found[c].pii_type, found[c].level) for c in EXPECTED if c in found} == EXPECTED
    assert found["extra_info"].evidence == "values"
    assert found["last_seen_from"].share == 1.0


def test_every_national_id_format_is_recognised(report):
    found = _by_column(report)
    assert found["national_id"].share == 1.0
    assert set(found["national_id"].formats) == {
        "fr_nir", "de_steuer_id", "it_codice_fiscale", "es_dni",
        "pl_pesel", "nl_bsn", "ch_ahv", "se_personnummer", "cz_sk_rodne_cislo",
    }


def test_luhn_valid_cards_are_found_and_invalid_numbers_are_not(report):
    found = _by_column(report)
    assert found["card_number"].pii_type == "credit_card"
    assert found["card_number"].share == 1.0
    assert "order_number" not in found


def test_protected_values_and_harmless_columns_are_not_flagged(report):
    found = _by_column(report)
    silent = [*NEGATIVES, "session_date", "heart_rate"]
    assert [c for c in silent if c in found] == []
    assert not [f for f in report.findings if f.table == "events"]


def test_undeclared_pii_fails_naming_the_column_and_proposes_meta(spark, probe, tmp_path, capsys):
    main = load_script("detect_pii").main

    manifest = _manifest(tmp_path / "manifest.json", {})
    out_json = tmp_path / "findings.json"
    code = main(["--schema", probe, "--manifest", str(manifest), "--json", str(out_json)], spark=spark)
    captured = capsys.readouterr()
    assert code == 1
    assert f"{probe}.people.reference" in captured.err
    assert "meta: {pii: iban, treatment: tokenize}" in captured.out
    assert "meta: {pii: date_of_birth, treatment: generalize_age_band}" in captured.out
    assert "meta: {pii: quasi_identifier, treatment: keep}" in captured.out
    assert f"{probe}.events (not in the dbt manifest)" in captured.out
    written = json.loads(out_json.read_text(encoding="utf-8"))
    assert written["ok"] is False
    assert "people.reference" in written["undeclared"]


def test_declaring_every_finding_passes_and_one_missing_fails(spark, probe, report, tmp_path, capsys):
    main = load_script("detect_pii").main
    from sflux.privacy.pii_detect import PROPOSED_TREATMENTS

    declared = {f.column: PROPOSED_TREATMENTS.get(f.pii_type, "keep") for f in report.findings}
    manifest = _manifest(tmp_path / "all.json", declared)
    assert main(["--schema", probe, "--manifest", str(manifest)], spark=spark) == 0
    assert "UNDECLARED" not in capsys.readouterr().out

    del declared["home_address"]
    manifest = _manifest(tmp_path / "partial.json", declared)
    assert main(["--schema", probe, "--manifest", str(manifest)], spark=spark) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"detect_pii: error: PII without a declared treatment: {probe}.people.home_address"


def test_user_errors_are_one_line_with_exit_2(spark, probe, tmp_path, capsys):
    main = load_script("detect_pii").main

    manifest = _manifest(tmp_path / "manifest.json", {})
    assert main(["--schema", "no_such_schema", "--manifest", str(manifest)], spark=spark) == 2
    err = capsys.readouterr().err
    assert err == "detect_pii: error: schema `no_such_schema` does not exist in the metastore\n"
    assert main(["--schema", probe, "--manifest", str(tmp_path / "missing.json")], spark=spark) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1
    with pytest.raises(SystemExit) as usage:
        main(["--sample-rows", "0"], spark=spark)
    assert usage.value.code == 2
