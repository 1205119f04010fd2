"""The City Stress dashboard (scripts/build_report.py), opened in a real browser.

The dashboard is built from the marts of the end-to-end test data, then:
- without a browser: the file is self-contained (no external script, style
  or image) and carries the data range, the counts and the git commit;
- in headless Chromium (Debian's `chromium` + `chromium-driver`, driven by
  selenium): a city picked in the selector changes the trend view, and every
  number it shows equals analytics.fct_city_daily_heart_rate for that city,
  suppressed cells show `suppressed`, and the page made no network request. A
  screenshot is saved as an artifact ($SANTEFLUX_TEST_ARTIFACTS, default
  <pytest tmp root>/artifacts).

Without Chromium or chromedriver the browser test is skipped with the reason
(run pytest with -rs to see it), unless SANTEFLUX_REQUIRE_BROWSER=1 (CI) makes
that a failure. SANTEFLUX_CHROMIUM and SANTEFLUX_CHROMEDRIVER override the
binaries found on PATH.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from script_loader import load_script
from dbt_helpers import REPO_ROOT
from sflux.reporting.dashboard import git_commit
from test_city_report import cities_most_telling_first, daily_rows, marts  # noqa: F401 (marts is a fixture)

build_report = load_script("build_report")

CHROME_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1280,1800",
)
MEASURES = ("n_users", "n_readings", "avg_heart_rate", "p50_heart_rate", "p90_heart_rate")


@pytest.fixture(scope="module")
def dashboard(marts, test_root: Path) -> Path:  # noqa: F811 (marts is the imported fixture)
    out = test_root / "reports" / "city_stress_dashboard.html"
    assert build_report.main(["--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def artifacts(test_root: Path) -> Path:
    path = Path(os.environ.get("SANTEFLUX_TEST_ARTIFACTS", str(test_root / "artifacts")))
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_dashboard_is_self_contained(dashboard: Path, spark):
    text = dashboard.read_text(encoding="utf-8")
    # Nothing is fetched: no external script, stylesheet, image, font or frame.
    assert not re.search(r"<script[^>]*\ssrc=", text)
    assert not re.search(r"<link[^>]*\shref=", text)
    assert not re.search(r"<(img|iframe|source|video|audio)[^>]*\ssrc=", text)
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", text)
    assert "plotly.js v" in text, "plotly.js must be inlined"
    rows = daily_rows(spark)
    first, last = min(r["reading_date"] for r in rows), max(r["reading_date"] for r in rows)
    assert f"readings from {first} to {last}" in text
    assert f'<dd id="git-commit">{git_commit(REPO_ROOT)}</dd>' in text
    assert f"holds {len(rows)} rows in all" in text
    assert 'id="built-at"' in text
    for city in {r["city"] for r in rows}:
        assert f"<option value='{html.escape(city, quote=True)}'>{html.escape(city)}</option>" in text


def _skip_or_fail(reason: str):
    """CI sets SANTEFLUX_REQUIRE_BROWSER=1: there a missing browser is a
    failure, not a skip that would let an untested dashboard land."""
    if os.environ.get("SANTEFLUX_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (SANTEFLUX_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


def _chromium() -> tuple[str, str]:
    browser = os.environ.get("SANTEFLUX_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("SANTEFLUX_CHROMEDRIVER") or shutil.which("chromedriver")
    if not browser or not driver:
        _skip_or_fail(
            "headless Chromium not installed (need `chromium` and `chromedriver` on PATH; on Debian: "
            "apt-get install -y chromium chromium-driver): browser test of the dashboard skipped"
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        _skip_or_fail("selenium is not installed in this venv (make setup installs requirements.txt)")
    return browser, driver


@pytest.fixture(scope="module")
def browser():
    binary, driver_path = _chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    profile = tempfile.mkdtemp(prefix="santeflux-chromium-")
    for flag in (*CHROME_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _trend_state(driver) -> dict:
    """What the trend view shows, read from the DOM."""
    return driver.execute_script(
        """
        const view = document.getElementById('trend-view');
        const rows = Array.from(document.querySelectorAll('#trend-table tbody tr')).map(tr => ({
          attrs: Object.fromEntries(Array.from(tr.attributes).map(a => [a.name, a.value])),
          cells: Array.from(tr.cells).map(td => td.textContent),
        }));
        const title = document.querySelector('#trend-chart .gtitle');
        const traces = document.getElementById('trend-chart').data || [];
        return {city: view.dataset.city, nRows: view.dataset.rows, rows: rows,
                title: title ? title.textContent : null,
                traces: traces.map(t => t.name + ':' + JSON.stringify(t.y))};
        """
    )


def test_picking_a_city_shows_its_trend_with_the_marts_numbers(browser, dashboard: Path, spark, artifacts: Path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser.get(dashboard.as_uri())
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#trend-table tbody tr"))
    selector = Select(browser.find_element(By.ID, "city-select"))

    def pick(city: str) -> dict:
        selector.select_by_value(city)
        wait.until(lambda d: d.find_element(By.ID, "trend-view").get_attribute("data-city") == city)
        return _trend_state(browser)

    ranked = cities_most_telling_first(spark)
    target = ranked[0]
    before = _trend_state(browser)
    if before["city"] == target:
        # Start from another city, so that picking the target is a change.
        before = pick(ranked[1])
    after = pick(target)

    # The view changed: title, chart data and table.
    assert after["title"] and target in after["title"] and after["title"] != before["title"]
    assert after["traces"] != before["traces"]
    assert [r["attrs"] for r in after["rows"]] != [r["attrs"] for r in before["rows"]]

    # Every number shown equals the mart's, exactly (data-* holds full precision).
    mart = {(r["reading_date"].isoformat(), r["subscription_type"]): r for r in daily_rows(spark, target)}
    shown = {(r["attrs"]["data-date"], r["attrs"]["data-tier"]): r for r in after["rows"]}
    assert all(r["attrs"]["data-city"] == target for r in after["rows"])
    assert set(mart) <= set(shown)
    assert int(after["nRows"]) == len(mart)
    for key, row in shown.items():
        attrs, cells = row["attrs"], row["cells"][2:]
        expected = mart.get(key)
        if expected is None:
            assert attrs["data-state"] == "no_data" and cells == ["no data"] * 5, key
        elif expected["is_suppressed"]:
            assert attrs["data-state"] == "suppressed", key
            assert cells == ["suppressed"] * 5, key
            assert not any(f"data-{m.replace('_', '-')}" in attrs for m in MEASURES), key
        else:
            assert attrs["data-state"] == "published", key
            assert int(attrs["data-n-users"]) == expected["n_users"]
            assert int(attrs["data-n-readings"]) == expected["n_readings"]
            for m in ("avg_heart_rate", "p50_heart_rate", "p90_heart_rate"):
                assert float(attrs[f"data-{m.replace('_', '-')}"]) == expected[m], (key, m)
            assert cells == [str(expected["n_users"]), str(expected["n_readings"]),
                             f"{expected['avg_heart_rate']:.1f}", f"{expected['p50_heart_rate']:.0f}",
                             f"{expected['p90_heart_rate']:.0f}"], key
    assert any(not r["is_suppressed"] for r in mart.values())

    # The heatmap marks every suppressed cell as such; none is drawn as a number.
    n_suppressed = sum(1 for r in spark.table("analytics.fct_city_heart_rate").collect() if r["is_suppressed"])
    heatmap_words = browser.execute_script(
        "return Array.from(document.querySelectorAll('#matrix-heatmap text'))"
        ".map(t => t.textContent).filter(t => t === 'suppressed').length")
    assert heatmap_words == n_suppressed

    # Offline: the page loaded no resource, and logged no error.
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    errors = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    assert errors == []

    shot = artifacts / "city_stress_dashboard.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    print(f"\ndashboard screenshot: {shot}")


def test_without_chromium_the_browser_test_skips_with_a_reason(monkeypatch):
    monkeypatch.delenv("SANTEFLUX_CHROMIUM", raising=False)
    monkeypatch.delenv("SANTEFLUX_CHROMEDRIVER", raising=False)
    monkeypatch.delenv("SANTEFLUX_REQUIRE_BROWSER", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium chromium-driver"):
        _chromium()
    monkeypatch.setenv("SANTEFLUX_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="SANTEFLUX_REQUIRE_BROWSER=1"):
        _chromium()
