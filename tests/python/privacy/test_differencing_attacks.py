"""Differencing attacks on the published marts (issue 11, section 2): an
auditor that tries to recompute every suppressed value from published ones.

Published totals that contain a daily city x tier cell: the all-dates cell
of the same city and tier (fct_city_heart_rate: readings and, through the
average, the heart-rate sum) and the date's readings_out over all cities
and tiers (fct_vitals_quality_daily). All-dates cells and dates add up to
the same grand total. No mart publishes an all-tiers or all-cities cell of
a day; the test checks that too, since such a cell would be one more total.

Two attacks, on the shared warehouse (`built`, read-only):
- the subtraction the issue names: a coarser published total minus the
  published cells it contains, whenever only one contained cell is hidden;
- elimination: every published total as a linear equation, and a hidden
  value counts as recovered when the equations determine it (rank test),
  which also catches chains of subtractions.

The case of exactly one small day of a city x tier is built by the dbt
unit test test_one_small_day_is_hidden_in_a_rectangle (the shared data has
none); its result is checked here.
"""

from __future__ import annotations

import numpy as np
import pytest

K = 5


@pytest.fixture(scope="module")
def marts(spark, built) -> dict:
    daily = {(r["city"], r["subscription_type"], str(r["reading_date"])): r.asDict()
             for r in spark.table("analytics.fct_city_daily_heart_rate").collect()}
    series = {(r["city"], r["subscription_type"]): r.asDict()
              for r in spark.table("analytics.fct_city_heart_rate").collect()}
    dates = {str(r["reading_date"]): r.asDict() for r in spark.table("analytics.fct_vitals_quality_daily").collect()}
    return {"daily": daily, "series": series, "dates": dates}


def test_exactly_one_small_day_is_hidden_in_a_rectangle(unit_test_results):
    """The shared data has no city x tier with exactly one small day, so the
    crafted case is the dbt unit test of the daily mart, which runs the
    mart's SQL on such data and expects the complementary rectangle."""
    name = "unit_test.santeflux.fct_city_daily_heart_rate.test_one_small_day_is_hidden_in_a_rectangle"
    assert unit_test_results.get(name) == "pass", unit_test_results.get(name)


def test_no_published_cell_of_a_day_spans_all_tiers_or_all_cities(spark, built):
    for table in spark.catalog.listTables("analytics"):
        columns = {f.name for f in spark.table(f"analytics.{table.name}").schema.fields}
        if "reading_date" in columns:
            assert {"city", "subscription_type"} <= columns or "city" not in columns and \
                "subscription_type" not in columns, f"analytics.{table.name} publishes a partial grain of a day"


def _hidden(cell: dict | None) -> bool:
    return cell is None or cell["is_suppressed"]


def test_no_suppressed_value_is_a_published_total_minus_published_cells(marts):
    daily, series, dates = marts["daily"], marts["series"], marts["dates"]
    assert any(c["is_suppressed"] for c in daily.values()), "nothing suppressed: nothing to attack"
    recovered = []
    for (city, tier, day), cell in daily.items():
        if not cell["is_suppressed"]:
            continue
        total = series[(city, tier)]
        others = [c for (ci, ti, d), c in daily.items() if (ci, ti) == (city, tier) and d != day]
        if not _hidden(total) and not any(_hidden(c) for c in others):
            n = total["n_readings"] - sum(c["n_readings"] for c in others)
            hr = total["avg_heart_rate"] * total["n_readings"] - sum(c["avg_heart_rate"] * c["n_readings"]
                                                                     for c in others)
            recovered.append(f"{city} {tier} {day} = all dates minus the others: n={n}, avg={hr / n:.2f}")
        others = [c for (ci, ti, d), c in daily.items() if d == day and (ci, ti) != (city, tier)]
        if not _hidden(dates[day]) and not any(_hidden(c) for c in others):
            n = dates[day]["readings_out"] - sum(c["n_readings"] for c in others)
            recovered.append(f"{city} {tier} {day} = the date's readings_out minus the others: n={n}")
    grand_from_dates = None if any(_hidden(d) for d in dates.values()) else \
        sum(d["readings_out"] for d in dates.values())
    grand_from_series = None if any(_hidden(s) for s in series.values()) else \
        sum(s["n_readings"] for s in series.values())
    hidden_series = [s for s, c in series.items() if c["is_suppressed"]]
    if grand_from_dates is not None and len(hidden_series) == 1:
        recovered.append(f"{hidden_series[0]} = all dates' readings_out minus the other cells")
    hidden_dates = [d for d, c in dates.items() if c["is_suppressed"]]
    if grand_from_series is not None and len(hidden_dates) == 1:
        recovered.append(f"{hidden_dates[0]} = all cells' readings minus the other dates")
    assert not recovered, "\n".join(recovered)


def _determined(equations: list[dict], unknowns: list) -> set:
    """The unknowns that a set of linear equations (coefficient dicts over
    `unknowns`, each with a known right-hand side) pins to one value."""
    if not unknowns or not equations:
        return set()
    index = {u: i for i, u in enumerate(unknowns)}
    matrix = np.zeros((len(equations), len(unknowns)))
    for row, equation in enumerate(equations):
        for unknown, coefficient in equation.items():
            matrix[row, index[unknown]] = coefficient
    rank = np.linalg.matrix_rank(matrix)
    found = set()
    for unknown, column in index.items():
        unit = np.zeros(len(unknowns))
        unit[column] = 1.0
        if np.linalg.matrix_rank(np.vstack([matrix, unit])) == rank:
            found.add(unknown)
    return found


def _system(marts: dict, with_dates: bool) -> tuple[list[dict], list]:
    """Hidden values as unknowns, every published total as an equation."""
    daily, series, dates = marts["daily"], marts["series"], marts["dates"]
    unknowns = [("day", k) for k, c in daily.items() if c["is_suppressed"]]
    unknowns += [("series", k) for k, c in series.items() if c["is_suppressed"]]
    equations = []
    for key in series:
        equation = {("day", k): 1.0 for k, c in daily.items() if k[:2] == key and c["is_suppressed"]}
        if series[key]["is_suppressed"]:
            equation[("series", key)] = -1.0
        equations.append(equation)
    if with_dates:
        unknowns += [("date", d) for d, c in dates.items() if c["is_suppressed"]]
        for day in dates:
            equation = {("day", k): 1.0 for k, c in daily.items() if k[2] == day and c["is_suppressed"]}
            if dates[day]["is_suppressed"]:
                equation[("date", day)] = -1.0
            equations.append(equation)
        grand = {("series", k): 1.0 for k, c in series.items() if c["is_suppressed"]}
        grand.update({("date", d): -1.0 for d, c in dates.items() if c["is_suppressed"]})
        equations.append(grand)
    return [e for e in equations if e], unknowns


def test_no_suppressed_value_can_be_solved_from_all_published_totals(marts):
    # Counts add up along both dimensions; heart-rate sums only within a
    # city x tier (no mart publishes a heart-rate total per date).
    counts = _determined(*_system(marts, with_dates=True))
    sums = _determined(*_system(marts, with_dates=False))
    assert not counts, f"hidden reading counts recovered by elimination: {sorted(counts)[:5]}"
    assert not sums, f"hidden heart-rate sums recovered by elimination: {sorted(sums)[:5]}"


def test_the_auditor_recovers_a_lone_suppressed_day():
    """The auditor is not blind: on a release with one hidden day and no
    complement (the rule before issue 11), both attacks recover it."""
    def cell(n, avg, hidden=False):
        return {"is_suppressed": hidden, "n_readings": None if hidden else n,
                "avg_heart_rate": None if hidden else avg}
    marts = {
        "daily": {("Lyon", "VIP", "d1"): cell(100, 70.0), ("Lyon", "VIP", "d2"): cell(20, 90.0, hidden=True),
                  ("Nice", "VIP", "d1"): cell(50, 60.0), ("Nice", "VIP", "d2"): cell(50, 62.0)},
        "series": {("Lyon", "VIP"): cell(120, (100 * 70.0 + 20 * 90.0) / 120),
                   ("Nice", "VIP"): cell(100, 61.0)},
        "dates": {"d1": {"is_suppressed": False, "readings_out": 150},
                  "d2": {"is_suppressed": False, "readings_out": 70}},
    }
    with pytest.raises(AssertionError, match="n=20, avg=90.00"):
        test_no_suppressed_value_is_a_published_total_minus_published_cells(marts)
    with pytest.raises(AssertionError, match="recovered by elimination"):
        test_no_suppressed_value_can_be_solved_from_all_published_totals(marts)


def _cohorts_recovered_from_subscription_totals(cohorts: list[dict], subscriptions: list[dict]) -> list[str]:
    """The subtraction across marts: a tier and region's subscriber count
    (fct_subscription_metrics) minus its published cohorts
    (fct_user_cohorts), whenever exactly one cohort of the group is hidden."""
    recovered = []
    for total in subscriptions:
        if total["is_suppressed"]:
            continue
        group = [c for c in cohorts
                 if (c["subscription_tier"], c["region"]) == (total["subscription_type"], total["region"])]
        hidden = [c for c in group if c["is_suppressed"]]
        # A group of one cohort is its own total: where both marts count the
        # same members a small one is suppressed in both (they differ where
        # a member's profile tier lags their latest plan: no exact value).
        if len(hidden) == 1 and len(group) > 1:
            n = total["n_subscribers"] - sum(c["n_users"] for c in group if not c["is_suppressed"])
            recovered.append(f"{total['subscription_type']} {total['region']} cohort"
                             f" {hidden[0]['cohort_month']} = subscribers minus the other cohorts: n={n}")
    return recovered


def test_no_hidden_cohort_is_a_subscription_total_minus_published_cohorts(spark, built):
    cohorts = [r.asDict() for r in spark.table("analytics.fct_user_cohorts").collect()]
    subscriptions = [r.asDict() for r in spark.table("analytics.fct_subscription_metrics").collect()]
    assert cohorts and subscriptions
    assert not _cohorts_recovered_from_subscription_totals(cohorts, subscriptions)


def test_the_cohort_auditor_recovers_a_lone_hidden_cohort():
    """Without the complement (the rule before), one hidden cohort in a
    published tier and region is the total minus the others."""
    def cohort(month, n):
        return {"subscription_tier": "Basic", "region": "Zürich", "cohort_month": month,
                "is_suppressed": n < K, "n_users": n if n >= K else None}
    cohorts = [cohort("2026-01", 9), cohort("2026-02", 6), cohort("2026-03", 2)]
    total = [{"subscription_type": "Basic", "region": "Zürich", "is_suppressed": False, "n_subscribers": 17}]
    assert _cohorts_recovered_from_subscription_totals(cohorts, total) == [
        "Basic Zürich cohort 2026-03 = subscribers minus the other cohorts: n=2"]
    cohorts[1].update(is_suppressed=True, n_users=None)  # the complement the mart adds
    assert _cohorts_recovered_from_subscription_totals(cohorts, total) == []
