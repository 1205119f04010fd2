"""The governed API is the analysts' way in (there is no analyst SQL
endpoint): attacked here on the session's real warehouse. An analyst or a
data scientist with a valid token tries what works on a Spark SQL endpoint,
`reflect(... getenv ...)` for the key and raw reads by table name or by file
path (``parquet.`<warehouse>/raw.db/users` ``), in every parameter of every
endpoint, in parameters no endpoint declares, and in the URL path. None of
it may return the key or any raw identifying value, or break the server.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sflux.api.settings import Settings

from test_api import Api

PERSONAS = ("analyst", "data_scientist")
# Names a SQL or file-reading endpoint would take, which no endpoint declares.
UNDECLARED = ("sql", "query", "q", "statement", "table", "path", "file", "schema", "mart", "select")


def payloads(warehouse: Path) -> list[str]:
    raw = warehouse / "raw.db"
    users_file = next((raw / "users").rglob("*.parquet"))
    return [
        "select reflect('java.lang.System', 'getenv', 'DBT_ENV_SECRET_PSEUDONYM_KEY')",
        "Lyon' union select reflect('java.lang.System','getenv','DBT_ENV_SECRET_PSEUDONYM_KEY') --",
        "${env:DBT_ENV_SECRET_PSEUDONYM_KEY}",
        f"select * from parquet.`{raw / 'users'}`",
        "select * from raw.users",
        "raw.users",
        str(raw / "users"),
        str(users_file),
        "../raw.db/users",
        "../../warehouse/raw.db/users/" + users_file.name,
        "..%2F..%2Fraw.db%2Fusers",
    ]


@pytest.fixture(scope="module")
def warehouse_api(built, tmp_path_factory) -> Api:
    return Api(tmp_path_factory.mktemp("analyst-paths"), Settings.from_env().analytics_dir)


@pytest.fixture(scope="module")
def forbidden(spark, built, pseudonym_key: str) -> set[str]:
    """What an attacker is after: the key, and the raw zone's identifying values."""
    values = {pseudonym_key}
    for row in spark.sql("select user_id, full_name, email, phone, national_id, street_address "
                         "from raw.users").collect():
        values |= {str(v) for v in row if v is not None and len(str(v)) >= 6}
    assert len(values) > 100, "raw.users gave too few values to look for"
    return values


def _leaks(text: str, forbidden: set[str]) -> list[str]:
    return sorted(v for v in forbidden if v in text)


def _routes(api: Api) -> dict[str, list[str]]:
    """Every GET route of the app and its query parameters, routes left out
    of the OpenAPI schema included."""
    from fastapi.routing import APIRoute

    return {route.path: [p.alias for p in route.dependant.query_params] if isinstance(route, APIRoute) else []
            for route in api.app.routes if "GET" in (getattr(route, "methods", None) or ())}


def test_no_endpoint_takes_sql_a_table_or_a_path(warehouse_api: Api):
    routes = _routes(warehouse_api)
    assert {"/v1/matrix", "/v1/trend", "/v1/time-range"} <= set(routes)
    declared = {name for names in routes.values() for name in names}
    assert not declared & set(UNDECLARED), declared


@pytest.mark.parametrize("persona", PERSONAS)
def test_reflect_and_raw_reads_through_every_parameter_get_nothing(warehouse_api: Api, forbidden, persona):
    token = warehouse_api.token(persona)
    warehouse = warehouse_api.settings.analytics_dir.parent
    attempts = 0
    for path, declared in _routes(warehouse_api).items():
        if "{" in path:
            continue
        for name in [*declared, *UNDECLARED]:
            for payload in payloads(warehouse):
                params = {"city": "Lyon", name: payload} if path == "/v1/trend" else {name: payload}
                response = warehouse_api.get(path, token, **params)
                attempts += 1
                assert response.status_code < 500, (path, name, payload, response.text[:300])
                assert not _leaks(response.text, forbidden), (path, name, payload)
    assert attempts > 300, attempts


@pytest.mark.parametrize("url", [
    "/v1/raw.users", "/v1/sql", "/v1/query", "/v1/raw/users", "/raw.db/users",
    "/v1/..%2F..%2Fraw.db%2Fusers", "/v1/%2e%2e/%2e%2e/raw.db/users/",
    "/v1/matrix/..%2F..%2Fraw.db%2Fusers", "/static-offline-docs/..%2F..%2Fraw.db%2Fusers",
])
def test_raw_by_url_path_is_not_found(warehouse_api: Api, forbidden, url):
    response = warehouse_api.get(url, warehouse_api.token("data_scientist"))
    assert response.status_code == 404, (url, response.status_code, response.text[:300])
    assert not _leaks(response.text, forbidden)
