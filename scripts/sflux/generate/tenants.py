"""Sponsoring organizations (tenants) of users.csv's tenant_id column.

Employers' wellness programs sponsor watches where they have sites, so
their members gather in one or two cities; insurers sponsor members
anywhere. Sizes are unequal on purpose: one large employer, a mid-sized
insurer, and organizations small enough that every cell of theirs is
suppressed downstream. Everyone else (about half) is a direct consumer
(empty tenant_id). Drawn from a stream of its own (config.STREAM_TENANTS),
so every other column of every file is unchanged by it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sponsor:
    tenant_id: str
    # Share of the members living in the sponsor's home city (the city of
    # that size rank, 0 = the largest) and of everyone elsewhere.
    home_rank: int | None
    home_share: float
    elsewhere_share: float


# In order of precedence: a member drawn by an earlier sponsor is theirs.
SPONSORS = (
    Sponsor("acme-works", home_rank=0, home_share=0.55, elsewhere_share=0.02),
    Sponsor("mutuelle-horizon", home_rank=None, home_share=0.0, elsewhere_share=0.15),
    Sponsor("leman.health", home_rank=1, home_share=0.35, elsewhere_share=0.0),
    Sponsor("atelier_nord", home_rank=2, home_share=0.08, elsewhere_share=0.0),
    Sponsor("tiny-coop", home_rank=None, home_share=0.0, elsewhere_share=0.01),
)


def assign_tenants(city_index: np.ndarray, city_sizes: np.ndarray, rng: np.random.Generator
                   ) -> list[str | None]:
    """One tenant id (or None: a direct consumer) per member. `city_sizes`
    are the expected city weights; home cities are picked by their rank."""
    n = len(city_index)
    ranks = np.argsort(-np.asarray(city_sizes), kind="stable")
    tenant: list[str | None] = [None] * n
    free = np.ones(n, dtype=bool)
    for sponsor in SPONSORS:
        share = np.full(n, sponsor.elsewhere_share)
        if sponsor.home_rank is not None and sponsor.home_rank < len(ranks):
            share[city_index == ranks[sponsor.home_rank]] = sponsor.home_share
        drawn = free & (rng.random(n) < share)
        for i in np.flatnonzero(drawn).tolist():
            tenant[i] = sponsor.tenant_id
        free &= ~drawn
    return tenant
