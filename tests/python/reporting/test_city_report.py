"""The city explorer (scripts/city_report.py) and the reporting marts it reads.

The pure logic (dates, city and tier matching, the trend grid, the tables) is
tested without Spark. The CLI is then run in-process against a warehouse built
from the end-to-end test's data (the `marts` fixture), and what it prints is
compared with analytics.fct_city_daily_heart_rate and the City Stress Matrix.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import date

import pytest

from script_loader import load_script
from dbt_helpers import REPO_ROOT
from sflux.core.errors import UserError
from sflux.reporting import city_trends as report

city_report = load_script("city_report")

DAILY = "analytics.fct_city_daily_heart_rate"
CELLS = "analytics.fct_city_heart_rate"
MATRIX = "analytics.fct_city_stress_matrix"


# --------------------------------------------------------------------------
# The warehouse, shared with tests/python/reporting/test_dashboard_browser.py
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def marts(built) -> None:
    """The reporting marts, from the shared end-to-end build (conftest)."""


def daily_rows(spark, city: str | None = None) -> list[dict]:
    df = spark.table(DAILY)
    rows = [r.asDict() for r in df.collect()]
    return [r for r in rows if city is None or r["city"] == city]


def cities_most_telling_first(spark) -> list[str]:
    """Cities with published and suppressed daily cells first (the most
    telling to check), then those with a published cell, then the rest."""
    rows = daily_rows(spark)
    states = {c: {r["is_suppressed"] for r in rows if r["city"] == c} for c in {r["city"] for r in rows}}
    ranked = sorted(states, key=lambda c: (states[c] != {True, False}, False not in states[c], c))
    assert ranked and False in states[ranked[0]], "the test data must publish at least one daily cell"
    return ranked


def city_with_both_states(spark) -> str:
    return cities_most_telling_first(spark)[0]


# --------------------------------------------------------------------------
# Pure logic, no Spark
# --------------------------------------------------------------------------


def test_dates_must_be_real_yyyy_mm_dd():
    assert report.parse_date("2026-11-01", "--from") == date(2026, 11, 1)
    for bad, why in [("2026-13-01", "real calendar date"), ("2026-02-30", "real calendar date"),
                     ("01/11/2026", "yyyy-MM-dd"), ("20261101", "yyyy-MM-dd"), ("", "yyyy-MM-dd")]:
        with pytest.raises(UserError, match=why) as exc:
            report.parse_date(bad, "--to")
        assert "--to" in str(exc.value)


def test_from_after_to_is_rejected():
    assert report.parse_date_range("2026-11-01", "2026-11-01") == (date(2026, 11, 1), date(2026, 11, 1))
    assert report.parse_date_range(None, None) == (None, None)
    with pytest.raises(UserError, match="--from 2026-11-03 is after --to 2026-11-01"):
        report.parse_date_range("2026-11-03", "2026-11-01")


CITIES = ["Lyon", "Lille", "Zürich", "Kraków", "L'Aquila", "'s-Hertogenbosch", "Lisbon"]


def test_city_matches_exactly_or_uniquely_ignoring_case_and_accents():
    assert report.resolve_city("Lyon", CITIES) == "Lyon"
    assert report.resolve_city("zurich", CITIES) == "Zürich"
    assert report.resolve_city("KRAKOW", CITIES) == "Kraków"
    # Typed decomposed (NFD), stored composed (NFC).
    assert report.resolve_city("Zu\u0308rich", CITIES) == "Zürich"
    assert report.resolve_city("l'aquila", CITIES) == "L'Aquila"


def test_unknown_city_lists_close_matches_first_then_every_city():
    with pytest.raises(UserError) as exc:
        report.resolve_city("Lyonn", CITIES)
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith("unknown city 'Lyonn'; did you mean Lyon")
    suggested, others = message.split("? Other cities: ")
    assert suggested.index("Lyon") < len(suggested)
    for city in CITIES:
        assert city in message
    assert "Lyon" not in others.split(", "), "a suggestion is not listed twice"


def test_unknown_city_without_close_match_lists_all_cities():
    everyone = "Kraków, L'Aquila, Lille, Lisbon, Lyon, 's-Hertogenbosch, Zürich"
    with pytest.raises(UserError, match=rf"^unknown city 'Xyz'; cities: {everyone}$"):
        report.resolve_city("Xyz", CITIES)


def test_close_matches_ignore_accents():
    assert report.close_matches("Zurik", CITIES)[0] == "Zürich"
    assert report.close_matches("Krakow", CITIES)[0] == "Kraków"


def test_tier_is_case_insensitive_and_unknown_tier_lists_tiers():
    tiers = ["Basic", "Premium", "VIP"]
    assert report.resolve_tier("vip", tiers) == "VIP"
    assert report.resolve_tier(None, tiers) is None
    with pytest.raises(UserError, match="unknown tier 'Gold'; tiers: Basic, Premium, VIP"):
        report.resolve_tier("Gold", tiers)


def test_names_sort_as_a_reader_expects():
    assert report.sort_names(["Zwolle", "Zürich", "'s-Hertogenbosch", "amsterdam", "Lyon"]) == [
        "amsterdam", "Lyon", "'s-Hertogenbosch", "Zürich", "Zwolle"]


def test_clip_range():
    first, last = date(2026, 11, 1), date(2026, 11, 7)
    assert report.clip_range(None, None, first, last) == (first, last)
    assert report.clip_range(date(2026, 10, 1), date(2026, 11, 3), first, last) == (first, date(2026, 11, 3))
    assert report.clip_range(date(2026, 12, 1), None, first, last) is None
    assert report.clip_range(None, None, None, None) is None


def _row(day: int, tier: str, suppressed: bool, avg: float = 70.25) -> dict:
    measures = dict(n_users=None, n_readings=None, avg_heart_rate=None, p50_heart_rate=None, p90_heart_rate=None)
    if not suppressed:
        measures = dict(n_users=6, n_readings=1200, avg_heart_rate=avg, p50_heart_rate=69.0, p90_heart_rate=88.0)
    return {"city": "Lyon", "reading_date": date(2026, 11, day), "subscription_type": tier,
            "is_suppressed": suppressed, **measures}


def test_trend_grid_tells_published_suppressed_and_no_data_apart():
    rows = [_row(1, "Basic", False), _row(1, "VIP", True), _row(2, "Basic", False, 71.0)]
    grid = report.trend_grid(rows, ["Basic", "VIP"], report.date_span(date(2026, 11, 1), date(2026, 11, 3)))
    states = [(c.reading_date.day, c.tier, c.state) for c in grid]
    assert states == [
        (1, "Basic", "published"), (1, "VIP", "suppressed"),
        (2, "Basic", "published"), (2, "VIP", "no_data"),
        (3, "Basic", "no_data"), (3, "VIP", "no_data"),
    ]


def test_trend_table_prints_suppressed_never_zero():
    rows = [_row(1, "Basic", False), _row(1, "VIP", True)]
    text = report.render_trend(report.trend_grid(rows, ["Basic", "VIP"]), decimals=2)
    lines = text.splitlines()
    assert lines[0].split() == ["date", "tier", "users", "readings", "avg_hr", "p50_hr", "p90_hr"]
    assert lines[2].split() == ["2026-11-01", "Basic", "6", "1200", "70.25", "69", "88"]
    assert lines[3].split() == ["2026-11-01", "VIP"] + ["suppressed"] * 5
    assert not re.search(r"\b0(\.0+)?\b", lines[3])


def test_matrix_row_prints_value_suppressed_or_dash():
    row = {"city": "Lyon", "avg_hr_basic": 70.04, "avg_hr_premium": None, "avg_hr_vip": None}
    text = report.render_matrix_row("Lyon", row, ["Basic", "Premium", "VIP"], {"VIP"}, decimals=1)
    assert text.splitlines()[2].split() == ["Lyon", "70.0", "-", "suppressed"]


def test_tier_column_matches_the_matrix_macro():
    assert report.tier_column("VIP") == "avg_hr_vip"
    assert report.tier_column("Premium Plus") == "avg_hr_premium_plus"


@pytest.mark.parametrize("args, expected", [
    (["--city", "Lyon", "--from", "2026-02-30"], "--from '2026-02-30' is not a real calendar date"),
    (["--city", "Lyon", "--to", "yesterday"], "--to 'yesterday' is not a date in yyyy-MM-dd form (e.g. 2026-11-01)"),
    (["--city", "Lyon", "--from", "2026-11-05", "--to", "2026-11-01"], "--from 2026-11-05 is after --to 2026-11-01"),
])
def test_bad_dates_exit_2_with_one_line_before_spark(args, expected, capsys, monkeypatch):
    def no_spark():
        raise AssertionError("Spark must not start for a bad date")

    monkeypatch.setattr("sflux.core.spark.get_spark", no_spark)
    assert city_report.main(args) == 2
    err = capsys.readouterr().err
    assert err == f"city_report: error: {expected}\n"


def test_help_explains_every_flag():
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "city_report.py"), "--help"],
                          capture_output=True, text=True, check=True)
    for flag in ("--city", "--from", "--to", "--tier", "--png", "--decimals"):
        assert flag in proc.stdout


# --------------------------------------------------------------------------
# Against the built marts
# --------------------------------------------------------------------------


def _trend_lines(out: str) -> dict[tuple[str, str], list[str]]:
    """date, tier -> the printed measure cells, from the trend table."""
    lines = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 7 and re.fullmatch(r"\d{4}-\d{2}-\d{2}", parts[0]):
            lines[(parts[0], parts[1])] = parts[2:]
    return lines


def test_report_prints_the_marts_values(spark, marts, capsys):
    city = city_with_both_states(spark)
    assert city_report.main(["--city", city, "--decimals", "3"]) == 0
    out = capsys.readouterr().out
    printed = _trend_lines(out)
    rows = daily_rows(spark, city)
    assert rows
    for row in rows:
        cells = printed[(row["reading_date"].isoformat(), row["subscription_type"])]
        if row["is_suppressed"]:
            assert cells == ["suppressed"] * 5
        else:
            assert cells == [str(row["n_users"]), str(row["n_readings"]), f"{row['avg_heart_rate']:.3f}",
                             f"{row['p50_heart_rate']:.0f}", f"{row['p90_heart_rate']:.0f}"]
    # The grid also shows date x tier cells the mart has no row for, as `-`.
    assert len(printed) >= len(rows)
    assert all(v == ["-"] * 5 for k, v in printed.items()
               if k not in {(r["reading_date"].isoformat(), r["subscription_type"]) for r in rows})

    matrix = next(r.asDict() for r in spark.table(MATRIX).collect() if r["city"] == city)
    suppressed = {
        r["subscription_type"] for r in spark.table(CELLS).collect() if r["city"] == city and r["is_suppressed"]
    }
    header_at = out.splitlines().index(next(line for line in out.splitlines() if line.startswith("city ")))
    matrix_line = out.splitlines()[header_at + 2]
    expected = [f"{matrix[report.tier_column(t)]:.3f}" if matrix[report.tier_column(t)] is not None
                else ("suppressed" if t in suppressed else "-") for t in ("Basic", "Premium", "VIP")]
    assert matrix_line.split()[-3:] == expected


def test_report_filters_by_tier_and_dates(spark, marts, capsys):
    rows = daily_rows(spark)
    city = city_with_both_states(spark)
    last = max(r["reading_date"] for r in rows)
    assert city_report.main(["--city", city.upper(), "--tier", "vip", "--from", last.isoformat()]) == 0
    printed = _trend_lines(capsys.readouterr().out)
    assert set(printed) == {(last.isoformat(), "VIP")}


def test_unknown_city_exits_2_and_suggests_the_closest(spark, marts, capsys):
    city = city_with_both_states(spark)
    typo = city[:-1] + ("x" if city[-1] != "x" else "y")
    assert city_report.main(["--city", typo]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"city_report: error: unknown city '{typo}'; did you mean {city}")
    for other in {r["city"] for r in daily_rows(spark)}:
        assert other in err


def test_unknown_tier_exits_2(spark, marts, capsys):
    assert city_report.main(["--city", city_with_both_states(spark), "--tier", "Gold"]) == 2
    assert capsys.readouterr().err == "city_report: error: unknown tier 'Gold'; tiers: Basic, Premium, VIP\n"


def test_png_chart_is_written(spark, marts, tmp_path, capsys):
    png = tmp_path / "charts" / "trend.png"
    assert city_report.main(["--city", city_with_both_states(spark), "--png", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000
    assert f"wrote {png}" in capsys.readouterr().out


def test_range_outside_the_data_says_so(spark, marts, capsys):
    assert city_report.main(["--city", city_with_both_states(spark), "--from", "1999-01-01", "--to", "1999-01-02"]) == 0
    assert "(no data in this range: the marts cover" in capsys.readouterr().out


def test_files_and_spark_print_the_same_bytes(spark, marts, tmp_path, capsys):
    """The default engine on the local target reads the mart files (no JVM);
    it must print exactly what the Spark path prints, errors included."""
    city = city_with_both_states(spark)
    last = max(r["reading_date"] for r in daily_rows(spark))
    cases = [
        ["--city", city],
        ["--city", city.lower(), "--tier", "vip", "--decimals", "3"],
        ["--city", city, "--from", last.isoformat(), "--to", last.isoformat(), "--tier", "Basic"],
        ["--city", city, "--from", "1999-01-01", "--to", "1999-01-02"],
        ["--city", city[:-1] + ("x" if city[-1] != "x" else "y")],
        ["--city", city, "--tier", "Gold"],
    ]
    for args in cases:
        printed = {}
        for engine in ("files", "spark"):
            code = city_report.main([*args, "--engine", engine])
            printed[engine] = (code, capsys.readouterr())
        assert printed["files"] == printed["spark"], args


def test_files_engine_starts_no_spark(spark, marts, capsys, monkeypatch):
    def no_spark():
        raise AssertionError("the files engine must not start Spark")

    monkeypatch.setattr("sflux.core.spark.get_spark", no_spark)
    monkeypatch.delenv("SANTEFLUX_TARGET", raising=False)
    assert city_report.main(["--city", city_with_both_states(spark)]) == 0
    assert "City Stress Matrix row" in capsys.readouterr().out


def test_the_cli_answers_in_under_two_seconds(spark, marts):
    """A fresh process, as a user runs it: no JVM on the local target. The
    target is under 2 s (docs/performance.md); the bound here leaves room for
    a busy machine, and is still below a JVM start alone."""
    import os
    import time

    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "city_report.py"),
                           "--city", city_with_both_states(spark)],
                          capture_output=True, text=True, env=dict(os.environ), check=False)
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 5.0, f"{elapsed:.1f} s"
