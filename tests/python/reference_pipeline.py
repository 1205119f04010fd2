"""An independent, plain-Python implementation of the vitals quality rules
and the City Stress Matrix, computed straight from the landing CSV files.

It shares no code with the dbt models: it exists so the end-to-end test can
compare the warehouse against the rules as written in the issue, not against
the SQL that implements them.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

HR_MIN, HR_MAX = 30, 220
WINDOW_SECONDS = 600
FROZEN_MIN_READINGS = 3
MIN_CELL_USERS = 5
TIER_RANK = {"Basic": 1, "Premium": 2, "VIP": 3}


def pseudonym(key: str, value: str) -> str:
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def epoch_seconds(ts: str) -> int:
    parsed = datetime.strptime(ts, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    return int(parsed.timestamp())


def read_rows(paths: list[Path]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for path in paths:
        with path.open(encoding="utf-8", newline="") as handle:
            rows.extend(csv.DictReader(handle))
    return rows


def current_subscriptions(rows: list[dict[str, str]]) -> dict[str, str]:
    """user_id -> tier of the latest start_date; on a tie the later line wins
    (rows must be in file order)."""
    best: dict[str, tuple[str, str]] = {}
    for row in rows:
        if row["user_id"] not in best or row["start_date"] >= best[row["user_id"]][0]:
            best[row["user_id"]] = (row["start_date"], row["subscription_type"])
    return {user: value[1] for user, value in best.items()}


@dataclass
class Reference:
    daily: dict[str, dict[str, int]] = field(default_factory=dict)
    cells: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    matrix: dict[str, dict[str, float | None]] = field(default_factory=dict)


def compute(landing: Path, consenting_users: set[str]) -> Reference:
    """The reference for the members in `consenting_users` (members without
    analytics consent never enter the anonymized zone)."""
    vitals = [r for r in read_rows(sorted(landing.glob("vitals*.csv")))
              if r["user_id"] in consenting_users]
    tiers = current_subscriptions([r for r in read_rows([landing / "subscriptions.csv"])
                                   if r["user_id"] in consenting_users])
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    # A reading counts in its wearer's city of the day: the first by name
    # when a day's landed readings (valid or not) name several.
    day_city: dict[tuple[str, str], str] = {}
    for row in vitals:
        day = (row["user_id"], row["reading_ts"][:10])
        day_city[day] = min(day_city.get(day, row["city"]), row["city"])

    distinct: dict[tuple[str, str, int], str] = {}
    for row in vitals:
        date = row["reading_ts"][:10]
        counts[date]["readings_in"] += 1
        if row["heart_rate"] == "":
            counts[date]["dropped_null_heart_rate"] += 1
            continue
        bpm = int(row["heart_rate"])
        if not HR_MIN <= bpm <= HR_MAX:
            counts[date]["dropped_out_of_range"] += 1
            continue
        key = (row["user_id"], row["reading_ts"], bpm)
        if key in distinct:
            counts[date]["dropped_duplicate"] += 1
        else:
            distinct[key] = day_city[(row["user_id"], date)]

    windows: dict[tuple[str, int], list[int]] = defaultdict(list)
    for (user, ts, bpm) in distinct:
        windows[(user, epoch_seconds(ts) // WINDOW_SECONDS)].append(bpm)
    frozen = {w for w, values in windows.items() if len(values) >= FROZEN_MIN_READINGS and min(values) == max(values)}

    cell_users: dict[tuple[str, str], set[str]] = defaultdict(set)
    cell_values: dict[tuple[str, str], list[int]] = defaultdict(list)
    members_in: dict[str, set[str]] = defaultdict(set)
    members_out: dict[str, set[str]] = defaultdict(set)
    for row in vitals:
        members_in[row["reading_ts"][:10]].add(row["user_id"])
    for (user, ts, bpm), city in distinct.items():
        date = ts[:10]
        if (user, epoch_seconds(ts) // WINDOW_SECONDS) in frozen:
            counts[date]["dropped_frozen"] += 1
            continue
        tier = tiers.get(user)
        if tier is None:
            counts[date]["dropped_no_subscription"] += 1
            continue
        counts[date]["readings_out"] += 1
        members_out[date].add(user)
        cell_users[(city, tier)].add(user)
        cell_values[(city, tier)].append(bpm)

    ref = Reference(daily={d: dict(c) for d, c in counts.items()})
    # A date describes people: suppressed with fewer than MIN_CELL_USERS
    # members in, or some but fewer out; one small date takes the date with
    # the fewest members in with it (their totals are published elsewhere).
    small_dates = {d for d in counts if len(members_in[d]) < MIN_CELL_USERS
                   or 0 < len(members_out[d]) < MIN_CELL_USERS}
    if len(small_dates) == 1:
        small_dates.add(min(set(counts) - small_dates, key=lambda d: (len(members_in[d]), d), default=None))
    for date, day in ref.daily.items():
        day["is_suppressed"] = date in small_dates
    for cell, values in cell_values.items():
        ref.cells[cell] = {
            "n_users": len(cell_users[cell]),
            "n_readings": len(values),
            "avg_heart_rate": sum(values) / len(values),
        }
    # Small cells are suppressed; exactly one small cell takes the published
    # cell with the fewest users (then readings, city, tier) with it.
    small = {c for c, s in ref.cells.items() if s["n_users"] < MIN_CELL_USERS}
    if len(small) == 1:
        small.add(min(set(ref.cells) - small, default=None,
                      key=lambda c: (ref.cells[c]["n_users"], ref.cells[c]["n_readings"], c)))
    for cell, stats in ref.cells.items():
        stats["is_suppressed"] = cell in small
    for (city, tier), stats in ref.cells.items():
        row = ref.matrix.setdefault(city, {t: None for t in TIER_RANK})
        if not stats["is_suppressed"]:
            row[tier] = stats["avg_heart_rate"]
    return ref
