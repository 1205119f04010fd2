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
            distinct[key] = min(distinct[key], row["city"])
        else:
            distinct[key] = row["city"]

    windows: dict[tuple[str, int], list[int]] = defaultdict(list)
    for (user, ts, bpm) in distinct:
        windows[(user, epoch_seconds(ts) // WINDOW_SECONDS)].append(bpm)
    frozen = {w for w, values in windows.items() if len(values) >= FROZEN_MIN_READINGS and min(values) == max(values)}

    cell_users: dict[tuple[str, str], set[str]] = defaultdict(set)
    cell_values: dict[tuple[str, str], list[int]] = defaultdict(list)
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
        cell_users[(city, tier)].add(user)
        cell_values[(city, tier)].append(bpm)

    ref = Reference(daily={d: dict(c) for d, c in counts.items()})
    for cell, values in cell_values.items():
        ref.cells[cell] = {
            "n_users": len(cell_users[cell]),
            "n_readings": len(values),
            "avg_heart_rate": sum(values) / len(values),
        }
    for (city, tier), stats in ref.cells.items():
        row = ref.matrix.setdefault(city, {t: None for t in TIER_RANK})
        if stats["n_users"] >= MIN_CELL_USERS:
            row[tier] = stats["avg_heart_rate"]
    return ref
