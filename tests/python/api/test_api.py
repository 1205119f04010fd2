"""The governed API (scripts/serve_api.py, package sflux.api).

Most tests run the app in-process with FastAPI's TestClient against small
synthetic marts written with pyarrow, laid out as Spark lays them out
(`part-*.parquet` + `_SUCCESS`). The numbers of the real marts are checked
against Spark's reading of the session's built warehouse (fixture `built`).
Every privacy claim of docs/api.md has a test here that performs the attack:
forged, expired and revoked tokens, cross-tenant requests, hostile
parameters, tokens smuggled into URLs, a world-readable token store.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sflux.api import settings as api_settings
from sflux.api.personas import load_personas
from sflux.api.settings import Settings
from sflux.api.snapshot import SnapshotReader, read_files, signature
from sflux.api.tokens import issue_token, revoke_token

from dbt_helpers import REPO_ROOT

SCRIPTS = REPO_ROOT / "scripts"
PERSONAS = REPO_ROOT / "conf" / "personas.yml"
TIERS = ["Basic", "Premium", "VIP"]


# --------------------------------------------------------------------------
# Synthetic marts
# --------------------------------------------------------------------------

CELL_SCHEMA = pa.schema([
    ("city", pa.string()), ("subscription_type", pa.string()), ("is_suppressed", pa.bool_()),
    ("n_users", pa.int64()), ("n_readings", pa.int64()), ("avg_heart_rate", pa.float64()),
])
DAILY_SCHEMA = pa.schema([
    ("city", pa.string()), ("reading_date", pa.date32()), ("subscription_type", pa.string()),
    ("is_suppressed", pa.bool_()), ("n_users", pa.int64()), ("n_readings", pa.int64()),
    ("avg_heart_rate", pa.float64()), ("p50_heart_rate", pa.float64()), ("p90_heart_rate", pa.float64()),
])


def write_mart(analytics_dir: Path, name: str, table: pa.Table, part: str = "part-00000-a.snappy.parquet") -> Path:
    """A table directory as Spark commits it: data files, then _SUCCESS."""
    root = analytics_dir / name
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    pq.write_table(table, root / part)
    (root / f".{part}.crc").write_bytes(b"crc")  # Spark's checksum side files are not data
    (root / "_SUCCESS").touch()
    return root


def with_tenant(schema: pa.Schema) -> pa.Schema:
    return schema.append(pa.field("tenant_id", pa.string()))


def matrix_table(cells: list[dict], tenant: bool) -> pa.Table:
    """The pivot the fct_city_stress_matrix model computes from the cells."""
    keys = sorted({(c["city"], c.get("tenant_id")) for c in cells})
    rows = []
    for city, tenant_id in keys:
        row = {"city": city}
        for tier in TIERS:
            match = [c for c in cells if (c["city"], c.get("tenant_id"), c["subscription_type"]) == (city, tenant_id, tier)]
            row[f"avg_hr_{tier.lower()}"] = match[0]["avg_heart_rate"] if match else None
        if tenant:
            row["tenant_id"] = tenant_id
        rows.append(row)
    fields = [("city", pa.string())] + [(f"avg_hr_{t.lower()}", pa.float64()) for t in TIERS]
    schema = pa.schema(fields + ([("tenant_id", pa.string())] if tenant else []))
    return pa.Table.from_pylist(rows, schema=schema)


def cell(city, tier, n_users, avg, tenant_id=None):
    suppressed = n_users < 5
    row = {"city": city, "subscription_type": tier, "is_suppressed": suppressed,
           "n_users": None if suppressed else n_users, "n_readings": None if suppressed else n_users * 100,
           "avg_heart_rate": None if suppressed else avg}
    if tenant_id is not None:
        row["tenant_id"] = tenant_id
    return row


def day(city, on, tier, n_users, avg, tenant_id=None):
    row = cell(city, tier, n_users, avg, tenant_id)
    row.update(reading_date=on, p50_heart_rate=None if row["is_suppressed"] else avg - 1,
               p90_heart_rate=None if row["is_suppressed"] else avg + 20)
    return row


ALL_MEMBER_CELLS = [
    cell("Lyon", "Basic", 12, 71.25), cell("Lyon", "VIP", 3, 99.0), cell("Zürich", "Basic", 8, 80.5),
    cell("Zürich", "Premium", 6, 77.125), cell("L'Aquila", "VIP", 9, 68.0),
]
ALL_MEMBER_DAYS = [
    day("Lyon", date(2026, 11, 1), "Basic", 7, 70.5), day("Lyon", date(2026, 11, 1), "VIP", 2, 90.0),
    day("Lyon", date(2026, 11, 3), "Basic", 6, 72.0), day("Zürich", date(2026, 11, 2), "Basic", 8, 80.5),
    day("L'Aquila", date(2026, 11, 4), "VIP", 9, 68.0),
]

# Two tenants whose names are near-misses of each other and of injection
# strings, so only an exact, typed comparison keeps them apart.
TENANT_CELLS = [
    cell("Lyon", "Basic", 10, 60.5, "acme"), cell("Oslo", "VIP", 7, 61.0, "acme"),
    cell("Lyon", "Basic", 11, 90.5, "beta"), cell("Bergen", "Premium", 6, 91.0, "beta"),
    cell("Lyon", "Basic", 9, 95.5, "acme2"), cell("Lyon", "Basic", 8, 96.5, "ACME"),
]
TENANT_DAYS = [
    day("Lyon", date(2026, 11, 1), "Basic", 10, 60.5, "acme"), day("Oslo", date(2026, 11, 2), "VIP", 3, 61.0, "acme"),
    day("Lyon", date(2026, 11, 1), "Basic", 11, 90.5, "beta"), day("Bergen", date(2026, 10, 20), "Premium", 6, 91.0, "beta"),
    day("Lyon", date(2026, 11, 5), "Basic", 9, 95.5, "acme2"),
]


def write_marts(analytics_dir: Path, names: dict[str, str], cells: list[dict], days: list[dict], tenant: bool) -> None:
    """The matrix, cells and daily marts, under `names` (settings name ->
    table written), with a tenant_id column or not."""
    cell_schema = with_tenant(CELL_SCHEMA) if tenant else CELL_SCHEMA
    day_schema = with_tenant(DAILY_SCHEMA) if tenant else DAILY_SCHEMA
    write_mart(analytics_dir, names[api_settings.CELLS_TABLE], pa.Table.from_pylist(cells, schema=cell_schema))
    write_mart(analytics_dir, names[api_settings.MATRIX_TABLE], matrix_table(cells, tenant))
    write_mart(analytics_dir, names[api_settings.DAILY_TABLE], pa.Table.from_pylist(days, schema=day_schema))


ALL_MEMBER_NAMES = {name: name for name in api_settings.TENANT_TABLES}


def build_marts(analytics_dir: Path) -> None:
    """All-member marts without tenant_id, tenant marts with it (the
    settings' TENANT_TABLES), as dbt builds them."""
    write_mart(analytics_dir, "subscription_tiers",
               pa.table({"subscription_type": TIERS, "tier_rank": [1, 2, 3], "tier_description": ["a", "b", "c"]}))
    write_marts(analytics_dir, ALL_MEMBER_NAMES, ALL_MEMBER_CELLS, ALL_MEMBER_DAYS, tenant=False)
    write_marts(analytics_dir, api_settings.TENANT_TABLES, TENANT_CELLS, TENANT_DAYS, tenant=True)


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------


class Api:
    """An app over its own marts, token store and audit log."""

    def __init__(self, root: Path, analytics_dir: Path) -> None:
        from fastapi.testclient import TestClient

        from sflux.api.app import create_app

        self.settings = Settings(
            analytics_dir=analytics_dir,
            tokens_file=root / "secrets" / "tokens.json",
            audit_file=root / "secrets" / "audit.jsonl",
            personas_file=PERSONAS,
            recheck_seconds=0,  # see every rebuild at once; test_recheck_interval covers the default
        )
        self.personas = load_personas(PERSONAS)
        self.app = create_app(self.settings)
        self.client = TestClient(self.app, raise_server_exceptions=False)

    def token(self, persona: str = "analyst", tenant: str | None = None, **kwargs) -> str:
        token, _ = issue_token(self.settings.tokens_file, self.personas, persona, tenant, kwargs.pop("days", 1),
                               "pytest", **kwargs)
        return token

    def get(self, url: str, token: str | None = None, **params):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.client.get(url, headers=headers, params=params or None)

    def audit(self) -> list[dict]:
        return [json.loads(line) for line in self.settings.audit_file.read_text().splitlines()]


@pytest.fixture()
def api(tmp_path: Path) -> Api:
    analytics = tmp_path / "warehouse" / "analytics.db"
    build_marts(analytics)
    return Api(tmp_path, analytics)


@pytest.fixture()
def tenant_api(tmp_path: Path) -> Api:
    analytics = tmp_path / "warehouse" / "analytics.db"
    build_marts(analytics)
    return Api(tmp_path, analytics)


def cells_by_key(body: dict) -> dict[tuple[str, str], dict]:
    return {(row["city"], c["tier"]): c for row in body["cities"] for c in row["cells"]}


# --------------------------------------------------------------------------
# Personas
# --------------------------------------------------------------------------


def test_personas_are_declared_once_with_their_api_scopes():
    personas = load_personas(PERSONAS)
    assert set(personas) == {"analyst", "data_scientist", "tenant", "dpo", "engineer"}
    assert [p for p, spec in personas.items() if spec.tenant_scoped] == ["tenant"]
    assert personas["engineer"].api == ()
    assert "raw" not in personas["analyst"].reads and "anonymized" not in personas["analyst"].reads
    assert set(personas["data_scientist"].reads) == {"analytics", "anonymized"}


def test_a_typo_in_the_personas_file_stops_the_api(tmp_path: Path):
    from sflux.api.errors import ConfigError

    broken = tmp_path / "personas.yml"
    broken.write_text(PERSONAS.read_text().replace("api: [matrix, trend, time_range]", "api: [matrix, trends]", 1))
    with pytest.raises(ConfigError, match=r"unknown API scope\(s\) \['trends'\]"):
        load_personas(broken)


def test_engineer_reads_no_data_and_health_needs_no_token(api: Api):
    token = api.token("engineer")
    for url in ("/v1/matrix", "/v1/time-range", "/v1/trend?city=Lyon"):
        response = api.get(url, token)
        assert response.status_code == 403
        assert response.json() == {"error": f"persona 'engineer' may not read {url.split('/')[2].split('?')[0].replace('-', '_')} (conf/personas.yml)"}
    health = api.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "marts": dict.fromkeys(api_settings.MART_TABLES, "ready")}


# --------------------------------------------------------------------------
# Authentication
# --------------------------------------------------------------------------


def test_tokens_are_stored_only_as_hashes_in_a_private_file(api: Api):
    import hashlib

    token = api.token("analyst", note="for Ana")
    store = api.settings.tokens_file
    text = store.read_text()
    assert token not in text and token[4:] not in text
    assert hashlib.sha256(token.encode()).hexdigest() in text
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.parent.stat().st_mode) == 0o700
    assert len(token) == 47 and token.startswith("sfx_")  # 32 random bytes, URL-safe base64


@pytest.mark.parametrize("header", [
    None, "Bearer", "Basic dXNlcjpwYXNz", "Bearer not-a-token", "Bearer sfx_" + "A" * 43,
    "Bearer sfx_" + "A" * 4000, "bearer sfx_' OR '1'='1",
])
def test_missing_malformed_or_unknown_token_is_401(api: Api, header):
    api.token("analyst")
    headers = {"Authorization": header} if header else {}
    response = api.client.get("/v1/matrix", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert set(response.json()) == {"error"} and "\n" not in response.json()["error"]


def test_expired_token_is_401(api: Api):
    past = datetime.now(timezone.utc) - timedelta(days=3)
    token, _ = issue_token(api.settings.tokens_file, api.personas, "analyst", None, 1, "pytest", now=past)
    response = api.get("/v1/matrix", token)
    assert (response.status_code, response.json()) == (401, {"error": "token expired"})


def test_revoked_token_is_401_at_once_without_restart(api: Api):
    token = api.token("analyst")
    assert api.get("/v1/matrix", token).status_code == 200
    record = next(r for r in json.loads(api.settings.tokens_file.read_text())["tokens"])
    revoke_token(api.settings.tokens_file, record["token_id"])
    response = api.get("/v1/matrix", token)
    assert (response.status_code, response.json()) == (401, {"error": "token revoked"})


def test_a_world_readable_token_store_is_refused(api: Api):
    token = api.token("analyst")
    api.settings.tokens_file.chmod(0o644)
    response = api.get("/v1/matrix", token)
    assert response.status_code == 503
    assert "must be private to its owner" in response.json()["error"]


# --------------------------------------------------------------------------
# The token CLI
# --------------------------------------------------------------------------


@pytest.fixture()
def cli_env(tmp_path: Path, monkeypatch) -> dict[str, Path]:
    paths = {"tokens": tmp_path / "s" / "tokens.json", "audit": tmp_path / "s" / "audit.jsonl"}
    monkeypatch.setenv("SANTEFLUX_API_TOKENS", str(paths["tokens"]))
    monkeypatch.setenv("SANTEFLUX_API_AUDIT", str(paths["audit"]))
    return paths


def test_api_tokens_cli_issue_list_revoke_and_audit(cli_env, capsys):
    import api_tokens

    assert api_tokens.main(["issue", "--persona", "tenant", "--tenant", "acme", "--days", "7", "--note", "Acme HR"]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert token.startswith("sfx_") and len(token) == 47
    token_id = err.split()[2].rstrip(":")
    assert f"token id {token_id}: persona tenant, tenant acme" in err

    assert api_tokens.main(["list"]) == 0
    listing = capsys.readouterr().out
    assert token not in listing
    line = next(row for row in listing.splitlines() if row.startswith(token_id))
    assert line.split()[1:3] == ["tenant", "acme"] and " active " in line and line.endswith("Acme HR")

    assert api_tokens.main(["revoke", token_id]) == 0
    capsys.readouterr()
    assert api_tokens.main(["list"]) == 0
    assert " revoked " in next(r for r in capsys.readouterr().out.splitlines() if r.startswith(token_id))

    audit_text = cli_env["audit"].read_text()
    assert token not in audit_text and token[4:] not in audit_text
    events = [json.loads(line) for line in audit_text.splitlines()]
    assert [e["event"] for e in events] == ["token_issued", "tokens_listed", "token_revoked", "tokens_listed"]
    assert events[0]["token_id"] == token_id and events[0]["tenant"] == "acme" and events[0]["persona"] == "tenant"
    assert events[2]["token_id"] == token_id
    assert stat.S_IMODE(cli_env["audit"].stat().st_mode) == 0o600
    assert token not in cli_env["tokens"].read_text()


@pytest.mark.parametrize("argv, message", [
    (["issue", "--persona", "root"], "unknown persona 'root'"),
    (["issue", "--persona", "tenant"], "persona 'tenant' is tenant-scoped: name the tenant with --tenant"),
    (["issue", "--persona", "analyst", "--tenant", "acme"], "persona 'analyst' is not tenant-scoped"),
    (["issue", "--persona", "tenant", "--tenant", "../beta"], "is not a tenant id"),
    (["issue", "--persona", "analyst", "--days", "0"], "--days must be from 1 to 366 (got 0)"),
    (["revoke", "abc"], "'abc' is not a token id"),
    (["revoke", "0123456789ab"], "no token with id 0123456789ab"),
])
def test_api_tokens_cli_usage_errors_are_one_line(cli_env, capsys, argv, message):
    import api_tokens

    assert api_tokens.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("api_tokens: error: ")


# --------------------------------------------------------------------------
# Endpoints on synthetic marts
# --------------------------------------------------------------------------


def test_matrix_spells_out_published_suppressed_and_no_data(api: Api):
    response = api.get("/v1/matrix", api.token("analyst"))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["tiers"] == TIERS and body["tenant"] is None
    assert [row["city"] for row in body["cities"]] == ["L'Aquila", "Lyon", "Zürich"]
    cells = cells_by_key(body)
    assert len(cells) == 9  # every city x tier, none missing
    assert cells[("Lyon", "Basic")] == {"tier": "Basic", "state": "published", "suppressed": False,
                                        "n_users": 12, "n_readings": 1200, "avg_heart_rate": 71.25}
    assert cells[("Lyon", "VIP")] == {"tier": "VIP", "state": "suppressed", "suppressed": True,
                                      "n_users": None, "n_readings": None, "avg_heart_rate": None}
    assert cells[("Lyon", "Premium")]["state"] == "no_data" and cells[("Lyon", "Premium")]["suppressed"] is False
    assert cells[("Zürich", "Premium")]["avg_heart_rate"] == 77.125


def test_trend_grid_filters_and_clips(api: Api):
    token = api.token("data_scientist")
    body = api.get("/v1/trend", token, city="lyon", tier="vip", **{"from": "2026-10-01", "to": "2026-11-02"}).json()
    assert (body["city"], body["tier"], body["from"], body["to"]) == ("Lyon", "VIP", "2026-10-01", "2026-11-02")
    assert (body["data_first_date"], body["data_last_date"]) == ("2026-11-01", "2026-11-04")
    assert [(d["date"], d["tier"], d["state"]) for d in body["days"]] == [
        ("2026-11-01", "VIP", "suppressed"), ("2026-11-02", "VIP", "no_data")]
    assert body["days"][0]["avg_heart_rate"] is None and body["days"][0]["suppressed"] is True

    everything = api.get("/v1/trend", token, city="Lyon").json()["days"]
    assert len(everything) == 4 * 3  # every date of the data x every tier
    published = [d for d in everything if d["state"] == "published"]
    assert [(d["date"], d["avg_heart_rate"], d["p50_heart_rate"], d["p90_heart_rate"], d["n_users"]) for d in published] == [
        ("2026-11-01", 70.5, 69.5, 90.5, 7), ("2026-11-03", 72.0, 71.0, 92.0, 6)]

    outside = api.get("/v1/trend", token, city="Lyon", **{"from": "2020-01-01", "to": "2020-12-31"}).json()
    assert outside["days"] == []


def test_city_names_with_quotes_and_accents(api: Api):
    token = api.token()
    assert api.get("/v1/trend", token, city="L'Aquila").json()["city"] == "L'Aquila"
    assert api.get("/v1/trend", token, city="ZURICH").json()["city"] == "Zürich"


def test_time_range(api: Api):
    body = api.get("/v1/time-range", api.token("dpo")).json()
    assert body == {"tenant": None, "first_date": "2026-11-01", "last_date": "2026-11-04", "n_days": 4}


def test_openapi_docs_are_served_offline(api: Api):
    docs = api.get("/docs")
    assert docs.status_code == 200 and "/static-offline-docs/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    assert api.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    spec = api.get("/openapi.json").json()
    assert {"/health", "/v1/matrix", "/v1/trend", "/v1/time-range"} <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


# --------------------------------------------------------------------------
# Hostile parameters: always a 4xx with one line, never a 500
# --------------------------------------------------------------------------

HOSTILE = [
    ("/v1/trend?city=Lyon' OR '1'='1", 404, "unknown city"),
    ("/v1/trend?city=Lyon%27%3B%20DROP%20TABLE%20users%3B--", 404, "unknown city"),
    ("/v1/trend?city=../../raw.db/users", 404, "unknown city"),
    ("/v1/trend?city=..%2F..%2F..%2Fetc%2Fpasswd", 404, "unknown city"),
    ("/v1/trend?city=%00", 404, "unknown city"),
    ("/v1/trend?city=%FF%FE%C0", 404, "unknown city"),
    ("/v1/trend?city=Lyon&city=Oslo&city=%27", 404, "unknown city"),
    ("/v1/trend?city=" + "x" * 5000, 400, "city is longer than 200 characters"),
    ("/v1/trend?city=", 404, "unknown city"),
    ("/v1/trend", 400, "city: Field required"),
    ("/v1/trend?city=Lyon&tier=../../raw.db", 400, "unknown tier"),
    ("/v1/trend?city=Lyon&tier=VIP' OR 1=1--", 400, "unknown tier"),
    ("/v1/trend?city=Lyon&tier=" + "V" * 5000, 400, "tier is longer than 200 characters"),
    ("/v1/trend?city=Lyon&from=2026-11-01' OR 1=1--", 400, "is not a date in yyyy-MM-dd form"),
    ("/v1/trend?city=Lyon&from=2026-02-30", 400, "is not a real calendar date"),
    ("/v1/trend?city=Lyon&to=99999-01-01", 400, "is not a date in yyyy-MM-dd form"),
    ("/v1/trend?city=Lyon&from=20261101", 400, "is not a date in yyyy-MM-dd form"),
    ("/v1/trend?city=Lyon&from=" + "9" * 20000, 400, "from is longer than 200 characters"),
    ("/v1/trend?city=Lyon&from=2026-11-05&to=2026-11-01", 400, "from=2026-11-05 is after to=2026-11-01"),
    ("/v1/matrix?tenant=../../raw.db", 400, "tenant is not a tenant id"),
    ("/v1/matrix?tenant=a' OR '1'='1", 400, "tenant is not a tenant id"),
    ("/v1/matrix?tenant=" + "t" * 10000, 400, "tenant is not a tenant id"),
    ("/v1/../../raw.db/users", 404, "Not Found"),
    ("/v1/matrix/../../../raw.db/users", 404, "Not Found"),
    ("/v1/%2e%2e/%2e%2e/raw.db/users", 404, "Not Found"),
    ("/static-offline-docs/..%2F..%2F..%2F..%2Fetc%2Fpasswd", 404, "Not Found"),
    ("/static-offline-docs/../../../../../../etc/passwd", 404, "Not Found"),
]


@pytest.mark.parametrize("url, status, message", HOSTILE, ids=[h[0][:60] for h in HOSTILE])
def test_hostile_parameters_get_a_clear_4xx(api: Api, url, status, message):
    response = api.get(url, api.token())
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message in error and "\n" not in error and len(error) < 600


def test_huge_date_ranges_are_clipped_to_the_data(api: Api):
    body = api.get("/v1/trend", api.token(), city="Lyon", **{"from": "0001-01-01", "to": "9999-12-31"}).json()
    assert len(body["days"]) == 4 * 3


def test_the_api_is_read_only(api: Api):
    token = api.token("dpo")
    for method in ("post", "put", "delete", "patch"):
        response = getattr(api.client, method)("/v1/matrix", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 405


def test_unknown_city_suggests_close_names(api: Api):
    response = api.get("/v1/trend", api.token(), city="Lyonn")
    assert (response.status_code, response.json()) == (404, {"error": "unknown city 'Lyonn'; did you mean Lyon?"})


# --------------------------------------------------------------------------
# Tenants
# --------------------------------------------------------------------------


def test_tenant_token_sees_only_its_tenant(tenant_api: Api):
    token = tenant_api.token("tenant", "acme")
    body = tenant_api.get("/v1/matrix", token).json()
    assert body["tenant"] == "acme"
    assert [row["city"] for row in body["cities"]] == ["Lyon", "Oslo"]
    cells = cells_by_key(body)
    assert cells[("Lyon", "Basic")]["avg_heart_rate"] == 60.5 and cells[("Lyon", "Basic")]["n_users"] == 10
    assert cells[("Oslo", "VIP")]["avg_heart_rate"] == 61.0
    # Exactly acme's numbers: nothing of beta (90.5, 91.0), acme2 (95.5) or ACME (96.5).
    published = sorted(c["avg_heart_rate"] for c in cells.values() if c["state"] == "published")
    assert published == [60.5, 61.0]

    trend = tenant_api.get("/v1/trend", token, city="Lyon").json()
    assert [(d["date"], d["tier"], d["avg_heart_rate"]) for d in trend["days"] if d["state"] == "published"] == [
        ("2026-11-01", "Basic", 60.5)]
    assert tenant_api.get("/v1/time-range", token).json() == {
        "tenant": "acme", "first_date": "2026-11-01", "last_date": "2026-11-02", "n_days": 2}
    assert tenant_api.get("/v1/matrix", token, tenant="acme").json() == body


@pytest.mark.parametrize("requested", [
    "beta", "ACME", "acme2", "acme ", " acme", "acme' OR '1'='1", "acme%", "*", "", "../beta", "acme\x00", "acme;beta",
])
def test_a_tenant_token_asking_for_another_tenant_is_403_and_audited(tenant_api: Api, requested):
    token = tenant_api.token("tenant", "acme")
    for url, params in (("/v1/matrix", {}), ("/v1/time-range", {}), ("/v1/trend", {"city": "Lyon"})):
        response = tenant_api.get(url, token, tenant=requested, **params)
        assert response.status_code == 403, (url, response.text)
        assert response.json() == {"error": "this token is scoped to tenant 'acme'; it may not read another tenant"}
    denied = [e for e in tenant_api.audit() if e.get("denied") == "cross_tenant"]
    assert len(denied) == 3
    assert all(e["tenant"] == "acme" and e["persona"] == "tenant" and e["status"] == 403 for e in denied)
    assert all(e["requested_tenant"] == requested for e in denied)


def test_a_tenant_cannot_see_or_even_learn_other_tenants_cities(tenant_api: Api):
    token = tenant_api.token("tenant", "acme")
    response = tenant_api.get("/v1/trend", token, city="Bergen")  # beta's city
    assert response.status_code == 404
    assert "Bergen" not in response.json()["error"].split(";", 1)[1]
    response = tenant_api.get("/v1/trend", token, city="Nowhere")
    assert response.json() == {"error": "unknown city 'Nowhere'; cities: Lyon, Oslo"}


def test_internal_personas_may_read_one_tenant(tenant_api: Api):
    body = tenant_api.get("/v1/matrix", tenant_api.token("analyst"), tenant="beta").json()
    assert sorted(c["avg_heart_rate"] for c in cells_by_key(body).values() if c["state"] == "published") == [90.5, 91.0]


def test_a_tenant_without_rows_gets_its_empty_view_and_an_unknown_tenant_is_a_404(tenant_api: Api):
    token = tenant_api.token("tenant", "gamma")  # a new customer: no member in the marts yet
    body = tenant_api.get("/v1/matrix", token).json()
    assert body["tenant"] == "gamma" and body["cities"] == []
    assert tenant_api.get("/v1/trend", token, city="Lyon").status_code == 404
    response = tenant_api.get("/v1/matrix", tenant_api.token("analyst"), tenant="gamma")
    assert response.status_code == 404
    assert response.json() == {"error": "unknown tenant: analytics.fct_tenant_city_stress_matrix has no row for it"}


def test_a_tenant_scoped_mart_is_never_served_as_the_all_member_one(tenant_api: Api):
    # A build that put tenant rows under the all-member names.
    write_marts(tenant_api.settings.analytics_dir, ALL_MEMBER_NAMES, TENANT_CELLS, TENANT_DAYS, tenant=True)
    response = tenant_api.get("/v1/matrix", tenant_api.token("analyst"))
    assert response.status_code == 503
    assert "has a tenant_id column, so it is not an all-member mart" in response.json()["error"]


def test_tenant_filter_returns_only_that_tenant_whatever_the_file_holds(tmp_path: Path):
    # Many row groups, tenants interleaved: the filter runs inside the scan.
    rows = [{"city": f"c{i % 7}", "tenant_id": ["acme", "beta", "acme2", "ACME", "acme "][i % 5], "v": i}
            for i in range(5000)]
    root = tmp_path / "mart"
    root.mkdir()
    pq.write_table(pa.Table.from_pylist(rows), root / "part-0.parquet", row_group_size=97)
    (root / "_SUCCESS").touch()
    for tenant in ("acme", "beta", "acme2", "ACME", "acme "):
        table = read_files(root, signature(root), tenant)
        assert set(table.column("tenant_id").to_pylist()) == {tenant}
        assert sorted(table.column("v").to_pylist()) == [r["v"] for r in rows if r["tenant_id"] == tenant]
    for hostile in ("acme' OR '1'='1", "%", "*", "", "nobody"):
        assert read_files(root, signature(root), hostile).num_rows == 0


def test_tenant_filter_on_a_table_partitioned_by_tenant_id(tmp_path: Path):
    # Partition discovery types tenant_id=7/ as an integer; ids stay text.
    root = tmp_path / "mart"
    for tenant, value in (("7", 1), ("12", 2)):
        (root / f"tenant_id={tenant}").mkdir(parents=True)
        pq.write_table(pa.table({"v": [value]}), root / f"tenant_id={tenant}" / "part-0.parquet")
    (root / "_SUCCESS").touch()
    assert read_files(root, signature(root), "7").to_pylist() == [{"v": 1, "tenant_id": 7}]
    for other in ("07", "7 ", "8", "acme", "7' OR '1'='1"):
        assert read_files(root, signature(root), other).num_rows == 0


def test_tenant_token_on_marts_without_tenant_id_gets_no_all_member_data(api: Api):
    # Tenant marts that lost their tenant_id column (all-member rows under
    # the tenant names) serve a tenant nothing.
    write_marts(api.settings.analytics_dir, api_settings.TENANT_TABLES, ALL_MEMBER_CELLS, ALL_MEMBER_DAYS, tenant=False)
    token = api.token("tenant", "acme")
    for url in ("/v1/matrix", "/v1/time-range", "/v1/trend?city=Lyon"):
        response = api.get(url, token)
        assert response.status_code == 403
        assert response.json()["error"].startswith("no tenant-scoped marts in this build")
        assert "71.25" not in response.text
    analyst = api.get("/v1/matrix", api.token("analyst"), tenant="acme")
    assert analyst.status_code == 404 and analyst.json()["error"].startswith("no tenant-scoped marts in this build")


# --------------------------------------------------------------------------
# Audit
# --------------------------------------------------------------------------


def test_every_request_is_audited_and_never_with_the_token(api: Api):
    token = api.token("analyst")
    other = api.token("analyst")
    requests = [
        ("/v1/matrix", token, 200), ("/v1/trend?city=Lyon", token, 200), ("/v1/time-range", None, 401),
        (f"/v1/trend?city={token}", token, 404), (f"/v1/{token}", token, 404), (f"/v1/matrix?tenant={other}", token, 404),
        ("/health", None, 200),
    ]
    for url, credential, status in requests:
        assert api.get(url, credential).status_code == status
    records = api.audit()
    assert [(r["endpoint"], r["status"]) for r in records] == [
        ("/v1/matrix", 200), ("/v1/trend", 200), ("/v1/time-range", 401), ("/v1/trend", 404),
        ("/v1/sfx_[redacted]", 404), ("/v1/matrix", 404), ("/health", 200)]
    assert records[5]["requested_tenant"] == "sfx_[redacted]"
    token_id = json.loads(api.settings.tokens_file.read_text())["tokens"][0]["token_id"]
    assert {r["token_id"] for r in records[:2]} == {token_id}
    assert records[0]["persona"] == "analyst" and records[0]["tenant"] is None
    assert records[2]["token_id"] is None  # unauthenticated: no one to name
    text = api.settings.audit_file.read_text()
    for secret in (token, other):
        assert secret not in text and secret[4:] not in text
    assert stat.S_IMODE(api.settings.audit_file.stat().st_mode) == 0o600


def test_no_answer_leaves_unaudited(api: Api):
    token = api.token()
    api.app.state.audit._fd = os.open("/dev/full", os.O_WRONLY)  # every write fails: ENOSPC
    response = api.get("/v1/matrix", token)
    assert (response.status_code, response.json()) == (503, {"error": "audit log unavailable"})


# --------------------------------------------------------------------------
# Freshness and consistent snapshots
# --------------------------------------------------------------------------


def rebuild_cells(api: Api, avg: float) -> None:
    cells = [cell("Lyon", "Basic", 12, avg)]
    write_mart(api.settings.analytics_dir, "fct_city_heart_rate",
               pa.Table.from_pylist(cells, schema=CELL_SCHEMA), part="part-00000-b.snappy.parquet")
    write_mart(api.settings.analytics_dir, "fct_city_stress_matrix", matrix_table(cells, tenant=False),
               part="part-00000-b.snappy.parquet")


def test_a_rebuild_is_served_without_restart(api: Api):
    token = api.token()
    assert cells_by_key(api.get("/v1/matrix", token).json())[("Lyon", "Basic")]["avg_heart_rate"] == 71.25
    rebuild_cells(api, 88.5)
    body = api.get("/v1/matrix", token).json()
    assert cells_by_key(body)[("Lyon", "Basic")]["avg_heart_rate"] == 88.5
    assert [row["city"] for row in body["cities"]] == ["Lyon"]


def test_recheck_interval_bounds_how_late_a_rebuild_is_seen(api: Api):
    reader = SnapshotReader(api.settings.analytics_dir, recheck_seconds=0.3)
    first = reader.read("fct_city_heart_rate")
    rebuild_cells(api, 88.5)
    assert reader.read("fct_city_heart_rate") is first  # within the interval: no directory listing
    time.sleep(0.35)
    assert reader.read("fct_city_heart_rate").table.column("avg_heart_rate").to_pylist() == [88.5]


def test_a_mart_being_rebuilt_is_served_from_its_last_complete_snapshot(api: Api):
    token = api.token()
    before = api.get("/v1/matrix", token).json()
    cells_dir = api.settings.analytics_dir / "fct_city_heart_rate"
    # Spark's committer at work: _SUCCESS gone, a half-written file in place.
    (cells_dir / "_SUCCESS").unlink()
    (cells_dir / "_temporary").mkdir()
    (cells_dir / "part-00001-c.snappy.parquet").write_bytes(b"PAR1 half written")
    assert api.get("/v1/matrix", token).json() == before
    assert api.get("/health").json()["marts"]["fct_city_heart_rate"] == "rebuilding: serving the previous snapshot"
    # dbt-spark drops a parquet table before re-creating it.
    shutil.rmtree(cells_dir)
    assert api.get("/v1/matrix", token).json() == before


def test_a_mart_never_seen_complete_is_a_503(tmp_path: Path):
    analytics = tmp_path / "analytics.db"
    build_marts(analytics)
    (analytics / "fct_city_heart_rate" / "part-00000-a.snappy.parquet").write_bytes(b"PAR1 torn")
    api = Api(tmp_path, analytics)
    response = api.get("/v1/matrix", api.token())
    assert response.status_code == 503
    assert response.json()["error"].startswith("analytics.fct_city_heart_rate is not built yet or is being rebuilt")
    shutil.rmtree(analytics / "fct_city_daily_heart_rate")
    assert api.get("/v1/time-range", api.token()).status_code == 503
    health = api.get("/health")
    assert health.status_code == 503 and health.json()["marts"]["fct_city_daily_heart_rate"] == "missing"


def test_a_file_set_that_changes_during_a_read_is_read_again(tmp_path: Path, monkeypatch):
    from sflux.api import snapshot

    write_mart(tmp_path, "t", pa.table({"v": [1]}))
    real_read = snapshot.read_files
    calls = []

    def racing_read(path, sig, tenant):
        table = real_read(path, sig, tenant)
        if not calls:  # a build lands between the read and the re-check
            write_mart(tmp_path, "t", pa.table({"v": [2]}), part="part-00000-z.snappy.parquet")
        calls.append(sig)
        return table

    monkeypatch.setattr(snapshot, "read_files", racing_read)
    result = SnapshotReader(tmp_path, retry_wait=0).read("t")
    assert result.table.column("v").to_pylist() == [2]
    assert len(calls) == 2


# --------------------------------------------------------------------------
# The key never reaches the API process
# --------------------------------------------------------------------------


def test_serve_api_refuses_to_start_with_the_key_in_its_environment(monkeypatch, capsys):
    import serve_api

    monkeypatch.setenv("DBT_ENV_SECRET_PSEUDONYM_KEY", "x" * 64)
    assert serve_api.main([]) == 2
    assert "the API must never hold the pseudonymization key" in capsys.readouterr().err
    monkeypatch.delenv("DBT_ENV_SECRET_PSEUDONYM_KEY")
    assert serve_api.main(["--host", "0.0.0.0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err


def test_the_api_imports_neither_spark_nor_other_sflux_modules():
    code = (
        "import sys; import sflux.api.app, sflux.api.bench; "
        "bad = sorted(m for m in sys.modules if m.startswith(('pyspark', 'py4j', 'dbt')) "
        "or (m.startswith('sflux.') and not m.startswith('sflux.api') and m not in ('sflux.core', 'sflux.core.paths'))); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_api_cli_serves_over_http_without_the_key(api: Api):
    token = api.token()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DBT_ENV_SECRET_PSEUDONYM_KEY"}
    env.update(SANTEFLUX_API_ANALYTICS_DIR=str(api.settings.analytics_dir),
               SANTEFLUX_API_TOKENS=str(api.settings.tokens_file), SANTEFLUX_API_AUDIT=str(api.settings.audit_file))
    server = subprocess.Popen([sys.executable, str(SCRIPTS / "serve_api.py"), "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1)
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        request = urllib.request.Request(f"{url}/v1/matrix", headers={"Authorization": f"Bearer {token}"})
        body = json.load(urllib.request.urlopen(request, timeout=5))
        assert cells_by_key(body)[("Lyon", "Basic")]["avg_heart_rate"] == 71.25
        environ = Path(f"/proc/{server.pid}/environ").read_bytes()
        assert b"DBT_ENV_SECRET_PSEUDONYM_KEY" not in environ
    finally:
        server.terminate()
        server.wait(timeout=10)


# --------------------------------------------------------------------------
# The real marts: the API's numbers are Spark's
# --------------------------------------------------------------------------


@pytest.fixture()
def warehouse_api(built, tmp_path: Path) -> Api:
    return Api(tmp_path, Settings.from_env().analytics_dir)


def test_matrix_equals_the_marts_read_by_spark(spark, warehouse_api: Api):
    body = warehouse_api.get("/v1/matrix", warehouse_api.token()).json()
    tiers = [r[0] for r in spark.sql("select subscription_type from analytics.subscription_tiers order by tier_rank").collect()]
    assert body["tiers"] == tiers
    matrix = {r["city"]: r.asDict() for r in spark.table(f"analytics.{api_settings.MATRIX_TABLE}").collect()}
    cells = {(r["city"], r["subscription_type"]): r.asDict() for r in spark.table("analytics.fct_city_heart_rate").collect()}
    assert {row["city"] for row in body["cities"]} == set(matrix)
    got = cells_by_key(body)
    assert len(got) == len(matrix) * len(tiers)
    states = set()
    for (city, tier), answer in got.items():
        source = cells.get((city, tier))
        if source is None:
            assert answer["state"] == "no_data"
        elif source["is_suppressed"]:
            assert answer["state"] == "suppressed" and answer["avg_heart_rate"] is None and answer["n_users"] is None
        else:
            assert answer["state"] == "published"
            assert answer["avg_heart_rate"] == matrix[city][f"avg_hr_{tier.lower()}"] == source["avg_heart_rate"]
            assert (answer["n_users"], answer["n_readings"]) == (source["n_users"], source["n_readings"])
        states.add(answer["state"])
    assert "published" in states


def test_trend_and_time_range_equal_the_marts_read_by_spark(spark, warehouse_api: Api):
    from pyspark.sql import functions as F

    token = warehouse_api.token()
    daily = spark.table("analytics.fct_city_daily_heart_rate")
    first, last = daily.agg(F.min("reading_date"), F.max("reading_date")).first()
    assert warehouse_api.get("/v1/time-range", token).json() == {
        "tenant": None, "first_date": first.isoformat(), "last_date": last.isoformat(), "n_days": (last - first).days + 1}

    rows = [r.asDict() for r in daily.collect()]
    for city in sorted({r["city"] for r in rows}):
        body = warehouse_api.get("/v1/trend", token, city=city, tier="Basic", **{"from": first.isoformat(), "to": last.isoformat()}).json()
        expected = {r["reading_date"].isoformat(): r for r in rows if r["city"] == city and r["subscription_type"] == "Basic"}
        assert len(body["days"]) == (last - first).days + 1
        for answer in body["days"]:
            source = expected.get(answer["date"])
            if source is None:
                assert answer["state"] == "no_data"
            elif source["is_suppressed"]:
                assert answer["state"] == "suppressed" and answer["avg_heart_rate"] is None
            else:
                assert [answer[m] for m in ("n_users", "n_readings", "avg_heart_rate", "p50_heart_rate", "p90_heart_rate")] == [
                    source[m] for m in ("n_users", "n_readings", "avg_heart_rate", "p50_heart_rate", "p90_heart_rate")]


def test_each_tenant_gets_exactly_its_rows_of_the_real_tenant_marts(spark, warehouse_api: Api):
    """Over the built tenant marts: every tenant's token gets its own cells,
    days and time range, equal to Spark's reading of its rows, and nothing of
    another tenant, whatever it asks for."""
    from pyspark.sql import functions as F

    cells = [r.asDict() for r in spark.table("analytics.fct_tenant_city_heart_rate").collect()]
    days = [r.asDict() for r in spark.table("analytics.fct_tenant_city_daily_heart_rate").collect()]
    tenants = sorted({c["tenant_id"] for c in cells})
    assert len(tenants) >= 3, tenants  # the generator's sponsors that reached the marts
    assert any(not c["is_suppressed"] for c in cells), "no published tenant cell: nothing real to isolate"
    seen_published = 0
    for tenant in tenants:
        token = warehouse_api.token("tenant", tenant)
        own = {(c["city"], c["subscription_type"]): c for c in cells if c["tenant_id"] == tenant}
        body = warehouse_api.get("/v1/matrix", token).json()
        assert body["tenant"] == tenant
        assert {row["city"] for row in body["cities"]} == {city for city, _ in own}
        for key, answer in cells_by_key(body).items():
            source = own.get(key)
            if source is None:
                assert answer["state"] == "no_data"
            elif source["is_suppressed"]:
                assert answer["state"] == "suppressed" and answer["avg_heart_rate"] is None
            else:
                seen_published += 1
                assert (answer["n_users"], answer["n_readings"], answer["avg_heart_rate"]) == (
                    source["n_users"], source["n_readings"], source["avg_heart_rate"])
        own_days = [d for d in days if d["tenant_id"] == tenant]
        first = min(d["reading_date"] for d in own_days)
        last = max(d["reading_date"] for d in own_days)
        assert warehouse_api.get("/v1/time-range", token).json() == {
            "tenant": tenant, "first_date": first.isoformat(), "last_date": last.isoformat(),
            "n_days": (last - first).days + 1}
        for city in sorted({d["city"] for d in own_days}):
            trend = warehouse_api.get("/v1/trend", token, city=city).json()
            published = {(a["date"], a["tier"]): a["avg_heart_rate"] for a in trend["days"] if a["state"] == "published"}
            assert published == {(d["reading_date"].isoformat(), d["subscription_type"]): d["avg_heart_rate"]
                                 for d in own_days if d["city"] == city and not d["is_suppressed"]}
        # Every other tenant, by parameter: refused, audited, no number served.
        for other in tenants:
            if other != tenant:
                for url, params in (("/v1/matrix", {}), ("/v1/trend", {"city": own_days[0]["city"]})):
                    response = warehouse_api.get(url, token, tenant=other, **params)
                    assert response.status_code == 403 and "avg_heart_rate" not in response.text
        # A city only other tenants have is unknown to this one, named nowhere.
        foreign = {c["city"] for c in cells} - {city for city, _ in own}
        for city in foreign:
            response = warehouse_api.get("/v1/trend", token, city=city)
            assert response.status_code == 404 and city not in response.json()["error"].split(";", 1)[1]
    assert seen_published >= 1
    # The all-member view is not any tenant's: an analyst reads it unchanged.
    all_members = spark.table("analytics.fct_city_heart_rate").agg(F.count("*")).first()[0]
    assert len(cells_by_key(warehouse_api.get("/v1/matrix", warehouse_api.token()).json())) >= all_members
