"""Pure logic shared by the city explorer (scripts/city_report.py) and the
dashboard builder (scripts/build_report.py): input validation, close-match
suggestions, the trend grid and plain-text tables. Nothing here imports
Spark, so all of it is unit-testable in milliseconds.

A trend cell is one row of analytics.fct_city_daily_heart_rate as a dict.
Three states must never be confused: a published value, a *suppressed* cell
(the row exists, every measure is NULL) and *no data* (no row at all). Tables
print them as the number, ``suppressed`` and ``-``.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sflux.core.errors import UserError

SUPPRESSED = "suppressed"
NO_DATA = "-"
MEASURES = ("n_users", "n_readings", "avg_heart_rate", "p50_heart_rate", "p90_heart_rate")
DATE_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")


# --------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------


def parse_date(text: str, flag: str) -> date:
    """A yyyy-MM-dd date, or a UserError naming the flag. Only that one
    format: it is the one the marts and `dbt show` use, and accepting more
    (20261101, 2026-W44) would make typos pass silently."""
    if not DATE_PATTERN.fullmatch(text.strip()):
        raise UserError(f"{flag} {text!r} is not a date in yyyy-MM-dd form (e.g. 2026-11-01)")
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UserError(f"{flag} {text!r} is not a real calendar date") from None


def parse_date_range(date_from: str | None, date_to: str | None) -> tuple[date | None, date | None]:
    start = parse_date(date_from, "--from") if date_from is not None else None
    end = parse_date(date_to, "--to") if date_to is not None else None
    if start and end and start > end:
        raise UserError(f"--from {start} is after --to {end}")
    return start, end


def fold(text: str) -> str:
    """Case- and accent-insensitive form used to compare names: `zurich`
    matches `Zürich`, and an NFD-typed name matches the NFC one stored."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


def close_matches(name: str, candidates: Sequence[str], n: int = 3) -> list[str]:
    """Up to n candidates most similar to name (accent- and case-blind),
    best first."""
    by_folded: dict[str, list[str]] = {}
    for candidate in candidates:
        by_folded.setdefault(fold(candidate), []).append(candidate)
    hits = difflib.get_close_matches(fold(name), list(by_folded), n=n, cutoff=0.5)
    return [c for folded in hits for c in by_folded[folded]][:n]


def resolve_city(name: str, cities: Sequence[str]) -> str:
    """The city as stored. An exact match wins; otherwise a unique match
    ignoring case and accents (`zurich` -> `Zürich`). Anything else is a
    UserError that lists the closest names first, then every other city."""
    if name in cities:
        return name
    folded = [c for c in cities if fold(c) == fold(name)]
    if len(folded) == 1:
        return folded[0]
    if not cities:
        raise UserError("the marts hold no city yet: load data and run `make build` (dbt build) first")
    close = close_matches(name, cities)
    others = [c for c in sort_names(cities) if c not in close]
    if close:
        listing = f"did you mean {', '.join(close)}? Other cities: {', '.join(others) or '(none)'}"
    else:
        listing = f"cities: {', '.join(others)}"
    raise UserError(f"unknown city {name!r}; {listing}")


def resolve_tier(name: str | None, tiers: Sequence[str]) -> str | None:
    """The tier as named in the subscription_tiers seed (case-insensitive:
    `vip` -> `VIP`), None for all tiers, or a UserError listing the tiers."""
    if name is None:
        return None
    for tier in tiers:
        if tier.casefold() == name.strip().casefold():
            return tier
    raise UserError(f"unknown tier {name!r}; tiers: {', '.join(tiers)}")


def sort_names(names: Iterable[str]) -> list[str]:
    """Alphabetical as a reader expects: accents and case do not push
    `Zürich` after `Zwolle` or `'s-Hertogenbosch` to the top."""
    return sorted(names, key=lambda n: (fold(n).lstrip("'"), n))


# --------------------------------------------------------------------------
# Trend grid
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TrendCell:
    """One city x date x tier cell; `row` is None when the mart has no row."""

    reading_date: date
    tier: str
    row: dict[str, Any] | None

    @property
    def state(self) -> str:
        if self.row is None:
            return "no_data"
        return "suppressed" if self.row["is_suppressed"] else "published"

    def value(self, measure: str) -> Any:
        return None if self.row is None else self.row[measure]


def trend_grid(
    rows: Sequence[dict[str, Any]], tiers: Sequence[str], dates: Sequence[date] | None = None
) -> list[TrendCell]:
    """Every date x tier cell, in date then tier-rank order, so a day or tier
    without data shows as `-` instead of silently vanishing. `dates` defaults
    to the dates present in rows."""
    by_key = {(r["reading_date"], r["subscription_type"]): r for r in rows}
    days = sorted(set(dates) if dates is not None else {r["reading_date"] for r in rows})
    return [TrendCell(day, tier, by_key.get((day, tier))) for day in days for tier in tiers]


def clip_range(
    start: date | None, end: date | None, first: date | None, last: date | None
) -> tuple[date, date] | None:
    """The requested [start, end] clipped to the data's [first, last]; None
    when they do not overlap or the data is empty. An open end means the
    data's end."""
    if first is None or last is None:
        return None
    lo = max(start, first) if start else first
    hi = min(end, last) if end else last
    return (lo, hi) if lo <= hi else None


def date_span(start: date, end: date) -> list[date]:
    """Every date from start to end, inclusive."""
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


# --------------------------------------------------------------------------
# Plain-text tables
# --------------------------------------------------------------------------


def format_number(value: Any, decimals: int) -> str:
    if isinstance(value, float):
        return f"{value:.{decimals}f}"
    return str(value)


def format_measure(cell: TrendCell, measure: str, decimals: int) -> str:
    if cell.state == "no_data":
        return NO_DATA
    if cell.state == "suppressed":
        return SUPPRESSED
    return format_number(cell.value(measure), decimals)


def render_table(header: Sequence[str], body: Sequence[Sequence[str]], left_columns: int = 1) -> str:
    """Aligned columns: the first `left_columns` left-aligned (labels), the
    rest right-aligned (numbers)."""
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def fmt(line: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i < left_columns else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), rule, *(fmt(line) for line in body)])


def render_matrix_row(
    city: str,
    matrix_row: dict[str, Any] | None,
    tiers: Sequence[str],
    suppressed_tiers: set[str],
    decimals: int,
) -> str:
    """The city's row of the City Stress Matrix, with the same conventions as
    scripts/show_matrix.py: a value, `suppressed`, or `-` for no data."""
    cells = [city]
    for tier in tiers:
        value = None if matrix_row is None else matrix_row.get(tier_column(tier))
        if value is not None:
            cells.append(format_number(float(value), decimals))
        elif tier in suppressed_tiers:
            cells.append(SUPPRESSED)
        else:
            cells.append(NO_DATA)
    return render_table(["city", *tiers], [cells])


def render_trend(cells: Sequence[TrendCell], decimals: int) -> str:
    header = ["date", "tier", "users", "readings", "avg_hr", "p50_hr", "p90_hr"]
    body = [
        [
            cell.reading_date.isoformat(),
            cell.tier,
            *(format_measure(cell, m, decimals if m == "avg_heart_rate" else 0) for m in MEASURES),
        ]
        for cell in cells
    ]
    return render_table(header, body, left_columns=2)


def tier_column(tier: str) -> str:
    """The matrix column of a tier, named like the subscription_tiers macro
    does (VIP -> avg_hr_vip)."""
    return "avg_hr_" + re.sub("[^a-z0-9]+", "_", tier.lower()).strip("_")
