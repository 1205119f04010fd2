"""What the endpoints answer, as pure functions of validated parameters and
mart tables: no I/O, no framework, so each rule is tested directly.

A cell is in one of three states, always spelled out: `published` (its
measures are numbers), `suppressed` (fewer than min_cell_users people: the
measures are null and `suppressed` is true, never 0) and `no_data` (the mart
has no row for it). These mirror the marts' own convention: a suppressed cell
keeps its row with NULL measures.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pyarrow as pa

from sflux.api.errors import ApiError

MAX_TEXT_PARAM = 200
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
COUNT_MEASURES = ("n_users", "n_readings")
MATRIX_MEASURES = (*COUNT_MEASURES, "avg_heart_rate")
TREND_MEASURES = (*MATRIX_MEASURES, "p50_heart_rate", "p90_heart_rate")


# --------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------


def bounded_text(value: str, param: str) -> str:
    if len(value) > MAX_TEXT_PARAM:
        raise ApiError(400, f"{param} is longer than {MAX_TEXT_PARAM} characters")
    return value


def parse_iso_date(value: str | None, param: str) -> date | None:
    """yyyy-MM-dd only, the form the marts use: a looser parser would let a
    typo such as 20261101 select something else silently."""
    if value is None:
        return None
    if not ISO_DATE.fullmatch(value):
        raise ApiError(400, f"{param}={bounded_text(value, param)!r} is not a date in yyyy-MM-dd form (e.g. 2026-11-01)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(400, f"{param}={value!r} is not a real calendar date") from None


def parse_period(date_from: str | None, date_to: str | None) -> tuple[date | None, date | None]:
    start, end = parse_iso_date(date_from, "from"), parse_iso_date(date_to, "to")
    if start and end and start > end:
        raise ApiError(400, f"from={start} is after to={end}")
    return start, end


def name_key(text: str) -> str:
    """Case- and accent-blind form of a name (`zurich` finds `Zürich`)."""
    stripped = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return stripped.casefold().strip()


def resolve_city(requested: str, cities: Sequence[str]) -> str:
    """The city as stored, matched exactly or uniquely ignoring case and
    accents; otherwise a 404 naming the closest cities. `cities` must be the
    caller's own scope, so the suggestions reveal nothing outside it."""
    bounded_text(requested, "city")
    if requested in cities:
        return requested
    same_key = [c for c in cities if name_key(c) == name_key(requested)]
    if len(same_key) == 1:
        return same_key[0]
    if not cities:
        raise ApiError(404, "no city in the marts for this scope yet")
    keys = {name_key(c): c for c in cities}
    close = [keys[k] for k in difflib.get_close_matches(name_key(requested), list(keys), n=3, cutoff=0.5)]
    hint = f"did you mean {', '.join(close)}?" if close else f"cities: {', '.join(sorted(cities, key=name_key))}"
    raise ApiError(404, f"unknown city {requested!r}; {hint}")


def resolve_tier(requested: str | None, tiers: Sequence[str]) -> str | None:
    if requested is None:
        return None
    bounded_text(requested, "tier")
    matches = [t for t in tiers if t.casefold() == requested.strip().casefold()]
    if not matches:
        raise ApiError(400, f"unknown tier {requested!r}; tiers: {', '.join(tiers)}")
    return matches[0]


def tier_slug(tier: str) -> str:
    """avg_hr_<slug> is the matrix column of a tier, as the dbt macro
    subscription_tiers() names it (VIP -> vip)."""
    return re.sub("[^a-z0-9]+", "_", tier.lower()).strip("_")


# --------------------------------------------------------------------------
# Cells
# --------------------------------------------------------------------------


def cell(row: dict[str, Any] | None, measures: Sequence[str]) -> dict[str, Any]:
    """One cell with its state spelled out. A row whose suppression flag is
    anything but an explicit false is treated as suppressed: fail closed."""
    if row is None:
        return {"state": "no_data", "suppressed": False, **dict.fromkeys(measures)}
    if row.get("is_suppressed") is not False:
        return {"state": "suppressed", "suppressed": True, **dict.fromkeys(measures)}
    return {"state": "published", "suppressed": False, **{m: row.get(m) for m in measures}}


def tier_names(tiers: pa.Table) -> list[str]:
    rows = sorted(tiers.select(["subscription_type", "tier_rank"]).to_pylist(), key=lambda r: r["tier_rank"])
    return [r["subscription_type"] for r in rows]


def matrix_payload(tiers: Sequence[str], matrix: pa.Table, cells: pa.Table, tenant: str | None) -> dict[str, Any]:
    """The City Stress Matrix: every city x tier. Suppression and counts come
    from fct_city_heart_rate (the matrix itself cannot tell suppressed from
    no data); the averages from the matrix."""
    by_cell = {(r["city"], r["subscription_type"]): r for r in cells.to_pylist()}
    rows = []
    for matrix_row in sorted(matrix.to_pylist(), key=lambda r: name_key(r["city"])):
        city = matrix_row["city"]
        city_cells = []
        for tier in tiers:
            source = by_cell.get((city, tier))
            if source is not None and source.get("is_suppressed") is False:
                average = matrix_row.get(f"avg_hr_{tier_slug(tier)}")
                source = {**source, "avg_heart_rate": average if average is not None else source["avg_heart_rate"]}
            city_cells.append({"tier": tier, **cell(source, MATRIX_MEASURES)})
        rows.append({"city": city, "cells": city_cells})
    return {"tenant": tenant, "tiers": list(tiers), "cities": rows}


@dataclass
class DailyIndex:
    """fct_city_daily_heart_rate arranged for lookups by city."""

    by_city: dict[str, dict[tuple[date, str], dict[str, Any]]] = field(default_factory=dict)
    first: date | None = None
    last: date | None = None

    @classmethod
    def of(cls, daily: pa.Table) -> DailyIndex:
        index = cls()
        for row in daily.to_pylist():
            index.by_city.setdefault(row["city"], {})[(row["reading_date"], row["subscription_type"])] = row
            day = row["reading_date"]
            index.first = day if index.first is None or day < index.first else index.first
            index.last = day if index.last is None or day > index.last else index.last
        return index


def time_range_payload(index: DailyIndex, tenant: str | None) -> dict[str, Any]:
    days = (index.last - index.first).days + 1 if index.first and index.last else 0
    return {
        "tenant": tenant,
        "first_date": index.first and index.first.isoformat(),
        "last_date": index.last and index.last.isoformat(),
        "n_days": days,
    }


def trend_payload(
    index: DailyIndex,
    tiers: Sequence[str],
    city: str,
    start: date | None,
    end: date | None,
    tier: str | None,
    tenant: str | None,
) -> dict[str, Any]:
    """Every date x tier of the requested period that the data covers, in
    date then tier-rank order, so a missing day shows as `no_data` instead of
    vanishing. The period is clipped to the data, which also bounds the
    answer whatever dates are asked for."""
    rows = index.by_city[city]
    shown = [tier] if tier else list(tiers)
    days: list[dict[str, Any]] = []
    if index.first is not None and index.last is not None:
        lo, hi = max(start or index.first, index.first), min(end or index.last, index.last)
        for offset in range(max((hi - lo).days + 1, 0)):
            day = lo + timedelta(days=offset)
            days.extend(
                {"date": day.isoformat(), "tier": t, **cell(rows.get((day, t)), TREND_MEASURES)} for t in shown
            )
    return {
        "tenant": tenant,
        "city": city,
        "tier": tier,
        "from": (start or index.first) and (start or index.first).isoformat(),
        "to": (end or index.last) and (end or index.last).isoformat(),
        "data_first_date": index.first and index.first.isoformat(),
        "data_last_date": index.last and index.last.isoformat(),
        "days": days,
    }
