"""subscriptions.csv rows: a plan history per user, with upgrades and the
injected duplicates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from sflux.generate.config import (
    GeneratorConfig,
    SECOND_UPGRADE_SHARE,
    STREAM_SUBSCRIPTIONS,
    SUBSCRIPTION_HISTORY_DAYS,
    UPGRADE_IN_WINDOW_SHARE,
)
from sflux.generate.population import user_id_list


@dataclass
class SubscriptionResult:
    rows: list[tuple[str, str, str]]
    users_without_subscription: int = 0
    upgraded_users: int = 0
    upgrade_rows: int = 0
    duplicate_subscription_rows: int = 0


def plan_history(
    first_start: date, upgrades: int, window: tuple[date, date], rng: np.random.Generator
) -> list[date]:
    """Strictly increasing start dates: the first plan, then each upgrade.
    About half the users' latest upgrade lands inside the generated days, so
    a reading's tier depends on its timestamp, not just on the user."""
    window_start, window_end = window
    if rng.random() < UPGRADE_IN_WINDOW_SHARE:
        span = (window_end - window_start).days + 1
        latest = window_start + timedelta(days=int(rng.integers(0, span)))
    else:
        span = (window_start - first_start).days - 1  # >= 29 by construction
        latest = first_start + timedelta(days=int(rng.integers(2, span + 1)))
    dates = [first_start, latest]
    if upgrades == 2:
        gap = (latest - first_start).days
        dates.insert(1, first_start + timedelta(days=int(rng.integers(1, gap))))
    return dates


def build_subscriptions(cfg: GeneratorConfig, tiers: Sequence[str]) -> SubscriptionResult:
    """Subscription rows per user, sorted by user and start date, with the
    configured share of missing users, upgrades and duplicated lines."""
    rng = np.random.default_rng([cfg.seed, STREAM_SUBSCRIPTIONS])
    n, top = cfg.users, len(tiers) - 1
    without = rng.random(n) < cfg.no_subscription_rate
    upgrading = (~without) & (rng.random(n) < cfg.upgrade_rate) & (top > 0)
    duplicated = (~without) & (rng.random(n) < cfg.duplicate_subscription_rate)
    # Cheaper plans are more common; upgraders cannot start on the top plan.
    weights = 0.5 ** np.arange(len(tiers))
    first_tier = rng.choice(len(tiers), size=n, p=weights / weights.sum())
    if top > 0:
        lower = rng.choice(top, size=n, p=weights[:top] / weights[:top].sum())
        first_tier = np.where(upgrading, lower, first_tier)
    history = rng.integers(SUBSCRIPTION_HISTORY_DAYS[0], SUBSCRIPTION_HISTORY_DAYS[1] + 1, n)
    window = (cfg.start_date, cfg.start_date + timedelta(days=cfg.days - 1))
    user_ids = user_id_list(n)
    result = SubscriptionResult(rows=[], users_without_subscription=int(without.sum()))
    for i in np.flatnonzero(~without):
        first_start = cfg.start_date - timedelta(days=int(history[i]))
        plan = [int(first_tier[i])]
        if upgrading[i]:
            higher = np.arange(plan[0] + 1, len(tiers))
            count = 2 if len(higher) > 1 and rng.random() < SECOND_UPGRADE_SHARE else 1
            plan += sorted(int(t) for t in rng.choice(higher, size=count, replace=False))
            result.upgraded_users += 1
            result.upgrade_rows += count
        starts = [first_start]
        if len(plan) > 1:
            starts = plan_history(first_start, len(plan) - 1, window, rng)
        rows = [(user_ids[i], tiers[t], d.isoformat()) for t, d in zip(plan, starts)]
        if duplicated[i]:
            # The identical line right after its original: a replayed export.
            at = int(rng.integers(0, len(rows)))
            rows.insert(at + 1, rows[at])
            result.duplicate_subscription_rows += 1
        result.rows.extend(rows)
    return result


