"""The simulated members and their places: user ids, the Zipf-weighted city
pool, and the seeded Faker name pools.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
from faker import Faker

from sflux.generate.config import (
    APOSTROPHE_NAME_SHARE,
    APOSTROPHE_SURNAMES,
    BASELINE_MAX,
    BASELINE_MEAN,
    BASELINE_MIN,
    BASELINE_SD,
    BURSTS_PER_DAY,
    CITIES,
    CITY_ZIPF_EXPONENT,
    COMMA_NAME_SHARE,
    City,
    FOREIGN_NAME_SHARE,
    GUARANTEED_CITIES,
    GeneratorConfig,
    NAME_POOL_SIZE,
    NIGHT_OFF_SHARE,
    RHYTHM_AMPLITUDE,
    STREAM_PEOPLE,
)


@dataclass(frozen=True)
class Population:
    """Per-user attributes, constant across a user's readings."""

    user_ids: pa.Array
    full_names: pa.Array
    names: Names
    cities: pa.Array  # the city pool
    city_index: np.ndarray  # per user, into `cities`
    device_ids: pa.Array
    baseline: np.ndarray
    rhythm_amplitude: np.ndarray
    bursts_per_day: np.ndarray
    second_offset: np.ndarray  # readings land at this second of each minute
    charge_minute: np.ndarray
    night_off: np.ndarray


def user_id_width(users: int) -> int:
    """Six digits, wider only when needed, so ids sort numerically as text."""
    return max(6, len(str(users)))


def user_id_list(users: int) -> list[str]:
    width = user_id_width(users)
    return [f"user_{i:0{width}d}" for i in range(1, users + 1)]


def build_city_pool(k: int, rng: np.random.Generator) -> list[City]:
    """K cities: the guaranteed awkward names first, the rest drawn; shuffled
    so which city is the big one depends on the seed."""
    guaranteed = [c for c in CITIES if c.name in GUARANTEED_CITIES][:k]
    rest = [c for c in CITIES if c.name not in GUARANTEED_CITIES]
    drawn = [rest[i] for i in rng.permutation(len(rest))[: k - len(guaranteed)]]
    picked = guaranteed + drawn
    return [picked[i] for i in rng.permutation(len(picked))]


def zipf_weights(k: int) -> np.ndarray:
    """Skewed city sizes, so some city x tier cells are small enough to be
    suppressed downstream."""
    weights = 1.0 / np.arange(1, k + 1) ** CITY_ZIPF_EXPONENT
    return weights / weights.sum()


@lru_cache(maxsize=None)
def seeded_faker(locale: str) -> Faker:
    # Building a Faker costs ~30 ms; callers always re-seed before use, so
    # sharing instances cannot change the output.
    return Faker(locale)


def name_pool(locale: str, seed: int) -> dict[str, tuple[list[str], list[str]]]:
    """First and last names per sex for one locale. Split by sex because
    Czech and Polish surnames are gendered (Novák / Nováková)."""
    fake = seeded_faker(locale)
    fake.seed_instance(seed)
    pool: dict[str, tuple[list[str], list[str]]] = {}
    for sex in ("female", "male"):
        first = getattr(fake, f"first_name_{sex}")
        last = getattr(fake, f"last_name_{sex}")
        firsts = list(dict.fromkeys(first() for _ in range(NAME_POOL_SIZE)))
        lasts = list(dict.fromkeys(last() for _ in range(NAME_POOL_SIZE)))
        pool[sex] = (firsts, lasts)
    return pool


@dataclass(frozen=True)
class Names:
    """Display names and the parts they were built from (users.csv derives
    e-mail addresses and gender from them)."""

    full: list[str]
    first: list[str]
    last: list[str]
    female: np.ndarray  # bool: drawn from the female name lists


def build_names(
    city_index: np.ndarray, pool_cities: Sequence[City], rng: np.random.Generator
) -> Names:
    """One display name per user, mostly from the locale of their city."""
    locales = sorted({c.locale for c in pool_cities})
    pools = {loc: name_pool(loc, int(rng.integers(2**31))) for loc in locales}
    n = len(city_index)
    home = np.array([locales.index(c.locale) for c in pool_cities])[city_index]
    foreign = rng.random(n) < FOREIGN_NAME_SHARE
    locale_idx = np.where(foreign, rng.integers(0, len(locales), n), home)
    female = rng.random(n) < 0.5
    comma = rng.random(n) < COMMA_NAME_SHARE
    pick_first, pick_last = rng.random(n), rng.random(n)
    # At least one user, so even a tiny run has an apostrophe in a name.
    marked = rng.choice(n, size=max(1, round(APOSTROPHE_NAME_SHARE * n)), replace=False)
    special = dict(zip(marked.tolist(), rng.choice(APOSTROPHE_SURNAMES, size=len(marked)).tolist()))
    names, first_names, last_names = [], [], []
    for i in range(n):
        firsts, lasts = pools[locales[locale_idx[i]]]["female" if female[i] else "male"]
        first = firsts[int(pick_first[i] * len(firsts))]
        last = special.get(i) or lasts[int(pick_last[i] * len(lasts))]
        names.append(f"{last}, {first}" if comma[i] else f"{first} {last}")
        first_names.append(first)
        last_names.append(last)
    return Names(names, first_names, last_names, female)


def build_population(cfg: GeneratorConfig) -> tuple[Population, list[City]]:
    """Draw every per-user attribute once, up front, from its own stream."""
    rng = np.random.default_rng([cfg.seed, STREAM_PEOPLE])
    n = cfg.users
    pool = build_city_pool(cfg.cities, rng)
    city_index = rng.choice(len(pool), size=n, p=zipf_weights(len(pool)))
    names = build_names(city_index, pool, rng)
    # Unique by construction: two users sharing a device would merge their
    # readings downstream.
    devices = rng.choice(2**32, size=n, replace=False)
    evening = rng.random(n) < 0.7
    charge = np.where(
        evening, rng.integers(17 * 60, 22 * 60, n), rng.integers(5 * 60, 8 * 60, n)
    )
    population = Population(
        user_ids=pa.array(user_id_list(n), pa.string()),
        full_names=pa.array(names.full, pa.string()),
        names=names,
        cities=pa.array([c.name for c in pool], pa.string()),
        city_index=city_index.astype(np.int32),
        device_ids=pa.array([f"dev-{int(d):08x}" for d in devices], pa.string()),
        baseline=np.clip(rng.normal(BASELINE_MEAN, BASELINE_SD, n), BASELINE_MIN, BASELINE_MAX),
        rhythm_amplitude=rng.uniform(*RHYTHM_AMPLITUDE, n),
        bursts_per_day=rng.uniform(*BURSTS_PER_DAY, n),
        second_offset=rng.integers(0, 60, n),
        charge_minute=charge,
        night_off=rng.random(n) < NIGHT_OFF_SHARE,
    )
    return population, pool


