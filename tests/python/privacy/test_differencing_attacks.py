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
        if table.isTemporary:  # a session's temp views, not stored in the zone
            continue
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


# --- tenants (issue 12, section 3) ------------------------------------------
# The members of every all-member cell are split into groups: each tenant,
# and the direct consumers (group ""), whose cells are never published. The
# tenant marts publish, per group, all-dates cells (fct_tenant_city_heart_rate)
# and day cells (fct_tenant_city_daily_heart_rate). What the groups did is
# taken from the marts' own ephemeral input, compiled by dbt and run here, so
# the auditor knows where the direct consumers are and how many they are.

DIRECT = ""


@pytest.fixture(scope="module")
def tenant_marts(spark, built, marts) -> dict:
    from dbt_helpers import run_dbt

    inline = ("select coalesce(tenant_id, '') as member_group, city, subscription_type, "
              "cast(reading_date as string) as reading_date, count(distinct user_pseudonym_id) as n_users, "
              "sum(n_readings) as n_readings from {{ ref('int_readings_joined_to_tenants') }} "
              "group by 1, 2, 3, 4")
    compiled = run_dbt(["compile", "--inline", inline, "--quiet"]).result.results[0].node.compiled_code
    truth = [r.asDict() for r in spark.sql(compiled).collect()]
    tdaily = {(r["tenant_id"], r["city"], r["subscription_type"], str(r["reading_date"])): r.asDict()
              for r in spark.table("analytics.fct_tenant_city_daily_heart_rate").collect()}
    tseries = {(r["tenant_id"], r["city"], r["subscription_type"]): r.asDict()
               for r in spark.table("analytics.fct_tenant_city_heart_rate").collect()}
    group_days = {(r["member_group"], r["city"], r["subscription_type"], r["reading_date"]): r["n_users"]
                  for r in truth}
    group_series: dict = {}
    for (group, city, tier, _day), _n in group_days.items():
        group_series.setdefault((group, city, tier), 0)
    for r in spark.sql(compiled.replace("cast(reading_date as string) as reading_date, ", "")
                       .replace("group by 1, 2, 3, 4", "group by 1, 2, 3")).collect():
        group_series[(r["member_group"], r["city"], r["subscription_type"])] = r["n_users"]
    return {**marts, "tdaily": tdaily, "tseries": tseries, "group_days": group_days,
            "group_series": group_series}


def test_tenant_marts_hold_every_tenant_cell_and_no_direct_consumer(tenant_marts):
    tenant_days = {k for k in tenant_marts["group_days"] if k[0] != DIRECT}
    assert set(tenant_marts["tdaily"]) == tenant_days
    assert set(tenant_marts["tseries"]) == {k for k in tenant_marts["group_series"] if k[0] != DIRECT}
    published = [c for c in tenant_marts["tseries"].values() if not c["is_suppressed"]]
    assert published, "no tenant cell published: the tenant attacks below would test nothing"
    assert all(c["n_users"] >= K for c in published)
    for key, cell in tenant_marts["tdaily"].items():
        if not cell["is_suppressed"]:
            assert cell["n_users"] == tenant_marts["group_days"][key] >= K


def _tenant_hidden(marts: dict, kind: str, key: tuple) -> bool:
    if key[0] == DIRECT:
        return True
    cell = marts["tdaily" if kind == "tday" else "tseries"].get(key)
    return cell is None or cell["is_suppressed"]


def _protected(marts: dict, kind: str, key: tuple) -> bool:
    """A hidden group cell that must not be recovered: every suppressed
    tenant cell, and the direct consumers' cell when it is small (a large
    one is no more than a published cell would be)."""
    if key[0] != DIRECT:
        return _tenant_hidden(marts, kind, key)
    size = marts["group_days" if kind == "tday" else "group_series"][key]
    return size < K


def test_no_group_is_an_all_member_cell_minus_published_tenant_cells(tenant_marts):
    """The subtraction the issue names: an all-member cell (all dates, or one
    day) minus the published tenant cells it contains, and a tenant's
    all-dates cell minus its published days, whenever one group or day is
    left."""
    m = tenant_marts
    recovered = []
    columns: dict = {}
    for key in m["group_series"]:
        columns.setdefault(("tseries", key[1:]), []).append(key)
    for key in m["group_days"]:
        columns.setdefault(("tday", key[1:]), []).append(key)
    for (kind, coarse), keys in columns.items():
        total = m["series"].get(coarse) if kind == "tseries" else m["daily"].get(coarse)
        left = [k for k in keys if _tenant_hidden(m, kind, k)]
        if not _hidden(total) and len(left) == 1 and _protected(m, kind, left[0]):
            recovered.append(f"{kind} {left[0]} = all-member cell minus the published tenant cells")
    for key, cell in m["tseries"].items():
        days = [k for k in m["tdaily"] if k[:3] == key]
        left = [k for k in days if m["tdaily"][k]["is_suppressed"]]
        if not cell["is_suppressed"] and len(left) == 1:
            recovered.append(f"tday {left[0]} = the tenant's all-dates cell minus its other days")
    assert not recovered, "\n".join(recovered)


def _tenant_system(marts: dict, with_dates: bool) -> tuple[list[dict], list]:
    """The all-member system plus every group cell: hidden ones are
    unknowns, and each group's days add up to its all-dates cell, each
    city x tier x day's groups to the all-member day, each city x tier's
    groups to the all-member all-dates cell."""
    equations, unknowns = _system(marts, with_dates)
    unknowns = list(unknowns)
    hidden_days = {k for k in marts["group_days"] if _tenant_hidden(marts, "tday", k)}
    hidden_series = {k for k in marts["group_series"] if _tenant_hidden(marts, "tseries", k)}
    unknowns += [("tday", k) for k in sorted(hidden_days)] + [("tseries", k) for k in sorted(hidden_series)]
    by_series: dict = {}
    by_day: dict = {}
    by_cell: dict = {}
    for key in hidden_days:
        by_series.setdefault(key[:3], {})[("tday", key)] = 1.0
        by_day.setdefault(key[1:], {})[("tday", key)] = 1.0
    for key in hidden_series:
        by_series.setdefault(key, {})[("tseries", key)] = -1.0
        by_cell.setdefault(key[1:], {})[("tseries", key)] = 1.0
    for coarse, equation in by_day.items():
        if marts["daily"].get(coarse, {"is_suppressed": True})["is_suppressed"]:
            equation[("day", coarse)] = -1.0
    for coarse, equation in by_cell.items():
        if marts["series"].get(coarse, {"is_suppressed": True})["is_suppressed"]:
            equation[("series", coarse)] = -1.0
    unknowns = list(dict.fromkeys(unknowns))
    known = set(unknowns)
    for equation in (*by_series.values(), *by_day.values(), *by_cell.values()):
        missing = [u for u in equation if u not in known]
        for u in missing:  # an all-member cell with no row: hidden, unknown
            unknowns.append(u)
            known.add(u)
        equations.append(equation)
    return equations, unknowns


def test_no_tenant_or_small_direct_group_can_be_solved_from_all_published_totals(tenant_marts):
    m = tenant_marts
    for with_dates, what in ((True, "reading counts"), (False, "heart-rate sums")):
        solved = _determined(*_tenant_system(m, with_dates))
        leaks = sorted(u for u in solved if u[0] in ("tday", "tseries") and _protected(m, *u))
        assert not leaks, f"hidden tenant-group {what} recovered by elimination: {leaks[:5]}"
        assert not {u for u in solved if u[0] in ("day", "series", "date")}, what


def test_the_tenant_auditor_recovers_a_lone_hidden_group():
    """Not blind: a tenant cell published next to an all-member cell whose
    only other group is a small, hidden tenant gives that tenant away, by
    subtraction and by elimination."""
    def cell(n, hidden=False):
        return {"is_suppressed": hidden, "n_readings": None if hidden else n, "n_users": None if hidden else 9,
                "avg_heart_rate": None if hidden else 70.0}
    marts = {
        "daily": {("Lyon", "VIP", "d1"): cell(30)},
        "series": {("Lyon", "VIP"): cell(30)},
        "dates": {"d1": {"is_suppressed": False, "readings_out": 30}},
        "tdaily": {("big", "Lyon", "VIP", "d1"): cell(27), ("small", "Lyon", "VIP", "d1"): cell(3, hidden=True)},
        "tseries": {("big", "Lyon", "VIP"): cell(27), ("small", "Lyon", "VIP"): cell(3, hidden=True)},
        "group_days": {("big", "Lyon", "VIP", "d1"): 9, ("small", "Lyon", "VIP", "d1"): 2},
        "group_series": {("big", "Lyon", "VIP"): 9, ("small", "Lyon", "VIP"): 2},
    }
    with pytest.raises(AssertionError, match="small"):
        test_no_group_is_an_all_member_cell_minus_published_tenant_cells(marts)
    with pytest.raises(AssertionError, match="recovered by elimination"):
        test_no_tenant_or_small_direct_group_can_be_solved_from_all_published_totals(marts)
