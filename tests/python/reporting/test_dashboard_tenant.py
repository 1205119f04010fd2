"""A tenant's dashboard (scripts/build_report.py --tenant) holds only that
tenant's rows of the tenant marts: its cities, its published numbers, and
no number of the all-member marts or of any other tenant. Built from the
shared end-to-end warehouse (conftest `built`); no browser needed.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest

from script_loader import load_script

build_report = load_script("build_report")


def _numbers(rows: list[dict]) -> set[str]:
    """Published averages as the page's JSON writes them."""
    return {json.dumps(r["avg_heart_rate"]) for r in rows if not r["is_suppressed"]}


@pytest.fixture(scope="module")
def tenant_rows(spark, built) -> dict:
    cells = [r.asDict() for r in spark.table("analytics.fct_tenant_city_heart_rate").collect()]
    days = [r.asDict() for r in spark.table("analytics.fct_tenant_city_daily_heart_rate").collect()]
    published = {c["tenant_id"] for c in days if not c["is_suppressed"]}
    assert published, "the test data must publish at least one tenant day"
    return {"cells": cells, "days": days, "tenant": sorted(published)[0]}


def test_a_tenants_dashboard_holds_only_that_tenants_rows(spark, tenant_rows, test_root: Path, capsys):
    tenant = tenant_rows["tenant"]
    out = test_root / "reports" / "tenant.html"
    assert build_report.main(["--out", str(out), "--tenant", tenant]) == 0
    assert f"of tenant {tenant}" in capsys.readouterr().out
    text = out.read_text(encoding="utf-8")
    assert f"<title>SantéFlux · City Stress dashboard · tenant {tenant}</title>" in text
    own_days = [d for d in tenant_rows["days"] if d["tenant_id"] == tenant]
    own = _numbers(own_days)
    assert own and all(number in text for number in own)
    def option(city: str) -> str:
        return f"<option value='{html.escape(city, quote=True)}'>{html.escape(city)}</option>"

    for city in {d["city"] for d in own_days}:
        assert option(city) in text
    own_cities = {c["city"] for c in tenant_rows["cells"] if c["tenant_id"] == tenant}
    for city in {c["city"] for c in tenant_rows["cells"]} - own_cities:
        assert option(city) not in text
    others = _numbers([r for r in tenant_rows["cells"] + tenant_rows["days"] if r["tenant_id"] != tenant])
    all_members = _numbers([r.asDict() for r in spark.table("analytics.fct_city_heart_rate").collect()]
                           + [r.asDict() for r in spark.table("analytics.fct_city_daily_heart_rate").collect()])
    leaked = sorted(n for n in (others | all_members) - own if n in text)
    assert not leaked, f"numbers of other tenants or of all members on {tenant}'s dashboard: {leaked[:5]}"
    assert "analytics.fct_tenant_city_daily_heart_rate (tenant " in text


def test_the_all_member_dashboard_is_the_default(spark, tenant_rows, test_root: Path):
    out = test_root / "reports" / "all.html"
    assert build_report.main(["--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "<title>SantéFlux · City Stress dashboard · all members</title>" in text
    published = _numbers([r.asDict() for r in spark.table("analytics.fct_city_daily_heart_rate").collect()])
    assert published and all(n in text for n in published)


@pytest.mark.parametrize("tenant", ["nobody", "acme' OR '1'='1", "../raw.db/users", "", "t" * 65])
def test_an_unknown_or_hostile_tenant_builds_nothing(tenant, tenant_rows, test_root: Path, capsys):
    out = test_root / "reports" / "hostile.html"
    assert build_report.main(["--out", str(out), "--tenant", tenant]) == 2
    assert "build_report: error:" in capsys.readouterr().err
    assert not out.exists()
