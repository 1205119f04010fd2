"""consent_events.csv for the synthetic generator: analytics consent given
or withdrawn per member, with a share of changes of mind and faulty rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from sflux.generate.config import SECONDS_PER_DAY


CONSENT_TYPE = "analytics"
CONSENT_REVERT_SHARE = 0.2  # of users who change their mind: a second, opposite event
CONSENT_FAULT_KINDS = ("unknown_action", "unknown_consent_type", "bad_event_ts",
                       "missing_user_id", "wrong_field_count", "duplicate_line")
CONSENT_FAULT_VALUES = {
    "unknown_action": ("revoke", "WITHDRAW", "granted"),
    "unknown_consent_type": ("marketing", "Analytics"),
    "bad_event_ts": ("2026-11-01T10:00:00Z", "01/11/2026 10:00", "2026-11-31 10:00:00"),
}


@dataclass(frozen=True)
class ConsentEvent:
    user_id: str
    consent_type: str
    action: str
    epoch: int  # seconds, UTC


def consent_changes(user_ids: Sequence[str], consent: np.ndarray, created_at: np.ndarray,
                    start_epoch: int, days: int, change_rate: float,
                    rng: np.random.Generator) -> list[ConsentEvent]:
    """Consent changes within the generated days, sorted by time then user:
    a withdraw for a consenting user (users.csv's consent_analytics is the
    state before the first day), a grant for the others; some change their
    mind once more later. Never before the account exists. Every draw is
    made for every user, so a user's events do not depend on the others'."""
    n = len(user_ids)
    end = start_epoch + days * SECONDS_PER_DAY
    changes = rng.random(n) < change_rate
    reverts = rng.random(n) < CONSENT_REVERT_SHARE
    first_u, second_u = rng.random(n), rng.random(n)
    earliest = np.maximum(start_epoch, np.asarray(created_at, dtype=np.int64) + 1)
    found: list[ConsentEvent] = []
    for i in np.flatnonzero(changes & (earliest <= end - 2)):
        lo = int(earliest[i])
        first = lo + int(first_u[i] * (end - lo - 1))  # lo .. end - 2
        action = "withdraw" if consent[i] else "grant"
        found.append(ConsentEvent(user_ids[i], CONSENT_TYPE, action, first))
        if reverts[i]:
            second = first + 1 + int(second_u[i] * (end - first - 1))  # first + 1 .. end - 1
            other = "grant" if action == "withdraw" else "withdraw"
            found.append(ConsentEvent(user_ids[i], CONSENT_TYPE, other, second))
    found.sort(key=lambda e: (e.epoch, e.user_id))
    return found


def consent_text_rows(changes: Sequence[ConsentEvent], bad_rate: float,
                      rng: np.random.Generator) -> tuple[list[list[str]], dict[str, int]]:
    """consent_events.csv's data rows, with one fault per faulty line (a
    duplicate_line writes the event twice: the copy is the faulty line).
    Returns the rows and the count per fault kind: the loader quarantines
    exactly their sum."""
    n = len(changes)
    faulty = rng.random(n) < bad_rate
    kind = rng.integers(0, len(CONSENT_FAULT_KINDS), n)
    pick = rng.integers(0, 1 << 30, n)
    counts = {k: 0 for k in CONSENT_FAULT_KINDS}
    rows: list[list[str]] = []
    for i, change in enumerate(changes):
        stamp = datetime.fromtimestamp(change.epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        row = [change.user_id, change.consent_type, change.action, stamp]
        if not faulty[i]:
            rows.append(row)
            continue
        name = CONSENT_FAULT_KINDS[kind[i]]
        counts[name] += 1
        if name in CONSENT_FAULT_VALUES:
            values = CONSENT_FAULT_VALUES[name]
            column = {"unknown_action": 2, "unknown_consent_type": 1, "bad_event_ts": 3}[name]
            row[column] = values[pick[i] % len(values)]
        elif name == "missing_user_id":
            row[0] = ""
        elif name == "wrong_field_count":
            row = row[:3]
        else:  # duplicate_line
            rows.append(list(row))
        rows.append(row)
    return rows, counts
