"""Synthetic SantéFlux landing data: subscriptions plus per-minute heart-rate
readings for N users over D days, with faults injected at known rates.

Design choices, and why:

* One seed drives everything (numpy Generators and seeded Faker instances),
  and nothing reads the clock, so the same arguments give byte-identical
  files. That makes test failures reproducible and diffs meaningful.
* Faker only builds small pools (names per locale); rows just index into
  per-user arrays. Per-reading work is a few vectorised numpy passes plus
  Arrow's C++ CSV writer, which keeps the cost per row tiny.
* Users are processed in chunks so memory stays bounded for large runs.
* Every injected fault is counted in ``generation_manifest.json`` so tests
  and data-quality checks downstream can assert exact numbers instead of
  "roughly 0.5 %". The heart-rate bounds and the frozen-sensor rule are read
  from dbt_project.yml (the project's single source for them), and the
  natural signal is kept clear of false "frozen" windows, so the warehouse's
  frozen-sensor count can be compared with the manifest exactly.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import yaml
from faker import Faker

from sflux import events as ev
from sflux import paths, people
from sflux.contract import (
    CONSENT_EVENTS,
    DATASETS,
    EVENTS,
    SUBSCRIPTIONS,
    USERS,
    VITALS,
    subscription_tiers,
)
from sflux.errors import UserError

MANIFEST_NAME = "generation_manifest.json"
SUBSCRIPTIONS_NAME = "subscriptions.csv"
VITALS_NAME = "vitals.csv"
USERS_NAME = "users.csv"
CONSENT_EVENTS_NAME = "consent_events.csv"
SPLITS = ("none", "day")

MINUTES_PER_DAY = 1440
SECONDS_PER_DAY = 86_400
# Grid cells (user-days x minutes) simulated at once: about 2M readings per
# chunk keeps peak memory near 150 MB whatever the run size.
CHUNK_CELLS = 2_000_000
# One file per day keeps that many files open at once.
MAX_SPLIT_DAYS = 366

# --- people and places ------------------------------------------------------


@dataclass(frozen=True)
class City:
    name: str
    locale: str  # Faker locale whose names mostly live here


# Real cities, native spellings. Accents, non-Latin-1 letters and apostrophes
# are on purpose: they are what breaks naive CSV and encoding handling.
CITIES: tuple[City, ...] = tuple(
    City(name, locale)
    for locale, names in (
        ("fr_FR", ("Paris", "Marseille", "Lyon", "Toulouse", "Nice", "Saint-Étienne",
                   "Villeneuve-d'Ascq")),
        ("de_DE", ("Berlin", "Hamburg", "München", "Köln", "Frankfurt am Main",
                   "Düsseldorf")),
        ("de_CH", ("Zürich", "Basel", "Bern")),
        ("fr_CH", ("Genève", "Lausanne")),
        ("de_AT", ("Wien", "Graz")),
        ("it_IT", ("Roma", "Milano", "Napoli", "Torino", "L'Aquila", "Reggio nell'Emilia")),
        ("es_ES", ("Madrid", "Barcelona", "València", "Sevilla", "A Coruña")),
        ("pt_PT", ("Lisboa", "Porto", "Coimbra")),
        ("nl_NL", ("Amsterdam", "Rotterdam", "Den Haag", "'s-Hertogenbosch")),
        ("nl_BE", ("Antwerpen", "Gent")),
        ("fr_BE", ("Bruxelles", "Liège")),
        ("pl_PL", ("Warszawa", "Kraków", "Łódź", "Wrocław", "Gdańsk")),
        ("cs_CZ", ("Praha", "Brno", "Ostrava")),
        ("sv_SE", ("Stockholm", "Göteborg", "Malmö")),
        ("da_DK", ("København", "Aarhus")),
        ("fi_FI", ("Helsinki", "Tampere")),
        ("en_IE", ("Dublin", "Cork")),
    )
    for name in names
)
# Always in the pool (when --cities allows): an umlaut, a Polish letter, and
# two apostrophes, one of them leading.
GUARANTEED_CITIES = ("Zürich", "Kraków", "L'Aquila", "'s-Hertogenbosch")
CITY_ZIPF_EXPONENT = 1.1  # a few big cities, a long tail of small ones
FOREIGN_NAME_SHARE = 0.2  # users whose name comes from another pool locale
COMMA_NAME_SHARE = 0.15  # "Last, First" as some registries export it
NAME_POOL_SIZE = 120  # first and last names per locale and sex
# Faker's European locales rarely produce apostrophes, which are exactly what
# trips up hand-rolled quoting and SQL string building; real surnames that
# carry one are mixed in for a small, guaranteed share of users.
APOSTROPHE_SURNAMES = ("D'Angelo", "D'Amico", "Dell'Acqua", "N'Diaye", "D'Almeida",
                       "O'Brien", "O'Sullivan", "D'hondt")
APOSTROPHE_NAME_SHARE = 0.02

# --- the heart-rate model ---------------------------------------------------

BASELINE_MEAN, BASELINE_SD, BASELINE_MIN, BASELINE_MAX = 68.0, 8.0, 48.0, 100.0
DAILY_DRIFT_SD = 2.0
RHYTHM_AMPLITUDE = (4.0, 10.0)
# Lowest at 03:00 UTC, i.e. about 04:00 local time for Central Europe.
RHYTHM_LOW_MINUTE = 3 * 60
NOISE_SD = 3.0
BURSTS_PER_DAY = (0.5, 3.5)  # per-user mean of a Poisson count
BURST_MINUTES = (5, 45)
BURST_BPM = (25.0, 70.0)
BURST_WINDOW = (6 * 60, 21 * 60)  # bursts start while people are up
NATURAL_MIN, NATURAL_MAX = 40, 200  # keeps natural values off the bounds

DROPOUT_SHARE = 0.02  # single minutes lost (Bluetooth, motion artefacts)
CHARGE_DAY_SHARE = 0.75  # days with a charging break
CHARGE_MINUTES = (30, 120)
CHARGE_JITTER = 45
NIGHT_OFF_SHARE = 0.2  # users who take the watch off to sleep
BEDTIME = (21 * 60, 23 * 60 + 30)
WAKE = (5 * 60, 7 * 60)

# --- faults -----------------------------------------------------------------

FROZEN_READINGS = (10, 40)
FROZEN_START_TRIES = 8
BOUNDARY_SHARE = 0.0005  # valid readings set exactly to a bound
OUT_OF_RANGE_EXAMPLES = (0, 12, 25, 250, 300)
DUPLICATE_RIGHT_AFTER = 0.6  # else up to DUPLICATE_MAX_SHIFT rows later
DUPLICATE_MAX_SHIFT = 5
SUBSCRIPTION_HISTORY_DAYS = (30, 730)  # first plan starts this long before day 1
UPGRADE_IN_WINDOW_SHARE = 0.5  # latest upgrade falls inside the generated days
SECOND_UPGRADE_SHARE = 0.3

# Sub-streams of the seed, so adding draws to one part leaves the others as
# they were (users.csv and events were added without changing a byte of
# vitals.csv or subscriptions.csv; consent_events.csv without changing the
# others).
STREAM_PEOPLE, STREAM_SUBSCRIPTIONS, STREAM_READINGS = 1, 2, 3
STREAM_USERS, STREAM_USER_FAULTS, STREAM_EVENTS = 4, 5, 6
STREAM_CONSENT, STREAM_CONSENT_FAULTS = 7, 8


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything that determines the output. Defaults are the `make demo` size."""

    out: Path
    users: int = 250
    days: int = 7
    seed: int = 42
    start_date: date = date(2026, 11, 1)
    split: str = "none"
    frozen_rate: float = 0.02
    null_rate: float = 0.005
    out_of_range_rate: float = 0.003
    duplicate_rate: float = 0.005
    duplicate_subscription_rate: float = 0.05
    upgrade_rate: float = 0.15
    no_subscription_rate: float = 0.05
    bad_user_rate: float = 0.01
    duplicate_user_rate: float = 0.005
    bad_event_rate: float = 0.002
    duplicate_event_rate: float = 0.002
    bad_consent_rate: float = 0.01
    consent_share: float = 0.85
    consent_change_rate: float = 0.1
    events_per_user_day: float = 20.0
    cities: int = 12
    quiet: bool = False

    def validate(self) -> None:
        """Reject arguments early, with a message that says what to change."""
        if self.users < 1:
            raise UserError(f"--users must be at least 1 (got {self.users})")
        if self.days < 1:
            raise UserError(f"--days must be at least 1 (got {self.days})")
        if self.seed < 0:
            raise UserError(f"--seed must be 0 or more (got {self.seed})")
        if self.split not in SPLITS:
            raise UserError(f"--split must be one of {', '.join(SPLITS)} (got {self.split})")
        if self.split == "day" and self.days > MAX_SPLIT_DAYS:
            raise UserError(f"--split day supports at most {MAX_SPLIT_DAYS} days (got {self.days})")
        if not 1 <= self.cities <= len(CITIES):
            raise UserError(f"--cities must be between 1 and {len(CITIES)} (got {self.cities})")
        for name in RATE_FIELDS:
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                flag = "--" + name.replace("_", "-")
                raise UserError(f"{flag} must be between 0 and 1 (got {value})")
        if not (math.isfinite(self.consent_share) and 0.0 <= self.consent_share <= 1.0):
            raise UserError(f"--consent-share must be between 0 and 1 (got {self.consent_share})")
        if not (math.isfinite(self.consent_change_rate) and 0.0 <= self.consent_change_rate <= 1.0):
            raise UserError("--consent-change-rate must be between 0 and 1 "
                            f"(got {self.consent_change_rate})")
        if not (math.isfinite(self.events_per_user_day) and 0.0 <= self.events_per_user_day <= 10_000):
            raise UserError("--events-per-user-day must be between 0 and 10000 "
                            f"(got {self.events_per_user_day})")
        per_reading = self.null_rate + self.out_of_range_rate + BOUNDARY_SHARE
        if per_reading > 1.0:
            raise UserError("--null-rate plus --out-of-range-rate must stay below 1")
        end = self.start_date + timedelta(days=self.days)
        if self.start_date.year < 1970 or end.year > 9999:
            raise UserError("--start-date plus --days must stay within 1970..9999")

    def data_arguments(self) -> dict[str, Any]:
        """The arguments recorded in the manifest: everything that shapes the
        data. `out` and `quiet` are left out so two runs with the same data
        arguments write identical manifests wherever they write them."""
        recorded = {k: v for k, v in asdict(self).items() if k not in ("out", "quiet")}
        recorded["start_date"] = self.start_date.isoformat()
        return recorded


RATE_FIELDS = (
    "frozen_rate",
    "null_rate",
    "out_of_range_rate",
    "duplicate_rate",
    "duplicate_subscription_rate",
    "upgrade_rate",
    "no_subscription_rate",
    "bad_user_rate",
    "duplicate_user_rate",
    "bad_event_rate",
    "duplicate_event_rate",
    "bad_consent_rate",
)


def default(name: str) -> Any:
    """A GeneratorConfig default, so the CLI never retypes one."""
    return next(f.default for f in fields(GeneratorConfig) if f.name == name)


@dataclass(frozen=True)
class Rules:
    """Data-quality rules shared with the dbt project."""

    heart_rate_min: int
    heart_rate_max: int
    frozen_window_minutes: int
    frozen_min_readings: int

    @property
    def out_of_range_values(self) -> np.ndarray:
        """Implausible values to inject, including the first value past each
        bound, which catches off-by-one range checks."""
        lo, hi = self.heart_rate_min, self.heart_rate_max
        values = {v for v in OUT_OF_RANGE_EXAMPLES if v < lo or v > hi} | {hi + 1}
        if lo > 0:
            values.add(lo - 1)
        return np.array(sorted(values), dtype=np.int16)


def load_rules(project_file: Path | None = None) -> Rules:
    """Read the bounds and the frozen-sensor rule from dbt_project.yml vars,
    so the generator and the warehouse can never disagree on them."""
    project_file = project_file or paths.REPO_ROOT / "dbt_project.yml"
    with project_file.open(encoding="utf-8") as handle:
        dbt_vars = (yaml.safe_load(handle) or {}).get("vars", {})
    try:
        rules = Rules(
            heart_rate_min=int(dbt_vars["heart_rate_min_bpm"]),
            heart_rate_max=int(dbt_vars["heart_rate_max_bpm"]),
            frozen_window_minutes=int(dbt_vars["frozen_window_minutes"]),
            frozen_min_readings=int(dbt_vars["frozen_min_readings"]),
        )
    except KeyError as missing:
        raise UserError(f"{project_file} lacks var {missing}") from None
    if MINUTES_PER_DAY % rules.frozen_window_minutes:
        raise UserError("frozen_window_minutes must divide a day (1440 minutes)")
    if not rules.heart_rate_min < NATURAL_MIN < NATURAL_MAX < rules.heart_rate_max:
        raise UserError("heart-rate bounds must leave room for natural values 40..200")
    return rules


# --- population -------------------------------------------------------------


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
def _faker(locale: str) -> Faker:
    # Building a Faker costs ~30 ms; callers always re-seed before use, so
    # sharing instances cannot change the output.
    return Faker(locale)


def name_pool(locale: str, seed: int) -> dict[str, tuple[list[str], list[str]]]:
    """First and last names per sex for one locale. Split by sex because
    Czech and Polish surnames are gendered (Novák / Nováková)."""
    fake = _faker(locale)
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


# --- subscriptions ----------------------------------------------------------


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


# --- readings ---------------------------------------------------------------


@dataclass
class Readings:
    """One chunk of readings in (user, day, minute) order, before duplication.

    `cell` is the reading's position in the chunk's user-day x minute grid;
    since a day is a whole number of frozen-check windows, cell // window is
    an epoch-aligned window id that is unique within the chunk.
    """

    grid_rows: int  # user-days in the chunk
    cell: np.ndarray  # int64
    user: np.ndarray  # int32, global user index
    day: np.ndarray  # int32, 0-based day of the run
    heart_rate: np.ndarray  # int16
    is_null: np.ndarray  # bool
    frozen: np.ndarray  # bool: part of a frozen episode
    shielded: np.ndarray  # bool: in a window an episode touches; no point faults
    injected: np.ndarray  # bool: an out-of-range or boundary value; never edited

    def __len__(self) -> int:
        return len(self.cell)


@lru_cache(maxsize=1)
def daily_rhythm() -> np.ndarray:
    """-1 at the nightly low, +1 twelve hours later (mid-afternoon).

    math.cos rather than np.cos: numpy may pick a different SIMD kernel on
    another CPU, and a last-bit difference could flip a rounded bpm there.
    """
    curve = [
        -math.cos(2 * math.pi * (minute - RHYTHM_LOW_MINUTE) / MINUTES_PER_DAY)
        for minute in range(MINUTES_PER_DAY)
    ]
    return np.array(curve, dtype=np.float32)


def activity_bursts(rate: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Added bpm per (user-day, minute): plateaus of 5-45 minutes. Built as
    +amp at the start and -amp at the end, then a cumulative sum, so the cost
    does not depend on how long the bursts are."""
    rows = len(rate)
    count = rng.poisson(rate)
    row = np.repeat(np.arange(rows), count)
    start = rng.integers(*BURST_WINDOW, len(row))
    length = rng.integers(BURST_MINUTES[0], BURST_MINUTES[1] + 1, len(row))
    lift = rng.uniform(*BURST_BPM, len(row)).astype(np.float32)
    steps = np.zeros((rows, MINUTES_PER_DAY + 1), dtype=np.float32)
    np.add.at(steps, (row, start), lift)
    np.add.at(steps, (row, start + length), -lift)
    return np.cumsum(steps, axis=1, dtype=np.float32)[:, :MINUTES_PER_DAY]


def wear_mask(
    charge_minute: np.ndarray, night_off: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Which minutes have a reading: lost single minutes, a charging break on
    most days and, for some users, no watch at night."""
    rows = len(charge_minute)
    minute = np.arange(MINUTES_PER_DAY, dtype=np.int32)[None, :]
    worn = rng.random((rows, MINUTES_PER_DAY), dtype=np.float32) >= DROPOUT_SHARE
    charging = rng.random(rows) < CHARGE_DAY_SHARE
    start = charge_minute + rng.integers(-CHARGE_JITTER, CHARGE_JITTER + 1, rows)
    duration = rng.integers(CHARGE_MINUTES[0], CHARGE_MINUTES[1] + 1, rows)
    end = np.where(charging, start + duration, start)
    worn &= ~((minute >= start[:, None]) & (minute < end[:, None]))
    bed = np.where(night_off, rng.integers(*BEDTIME, rows), MINUTES_PER_DAY)
    wake = np.where(night_off, rng.integers(*WAKE, rows), 0)
    worn &= (minute < bed[:, None]) & (minute >= wake[:, None])
    return worn


def simulate_readings(
    pop: Population, first: int, last: int, days: int, rng: np.random.Generator
) -> Readings:
    """Natural readings for users [first, last): baseline + daily rhythm +
    bursts + noise, sampled on the minutes the watch was worn."""
    user = np.repeat(np.arange(first, last, dtype=np.int32), days)
    rows = len(user)
    level = (pop.baseline[user] + rng.normal(0.0, DAILY_DRIFT_SD, rows)).astype(np.float32)
    amplitude = pop.rhythm_amplitude[user].astype(np.float32)
    bpm = level[:, None] + amplitude[:, None] * daily_rhythm()[None, :]
    bpm += rng.standard_normal((rows, MINUTES_PER_DAY), dtype=np.float32) * np.float32(NOISE_SD)
    bpm += activity_bursts(pop.bursts_per_day[user], rng)
    worn = wear_mask(pop.charge_minute[user], pop.night_off[user], rng)
    cell = np.flatnonzero(worn)
    row = cell // MINUTES_PER_DAY
    values = np.clip(np.rint(bpm.ravel()[cell]), NATURAL_MIN, NATURAL_MAX).astype(np.int16)
    n = len(cell)
    return Readings(
        grid_rows=rows,
        cell=cell,
        user=user[row],
        day=(row % days).astype(np.int32),
        heart_rate=values,
        is_null=np.zeros(n, dtype=bool),
        frozen=np.zeros(n, dtype=bool),
        shielded=np.zeros(n, dtype=bool),
        injected=np.zeros(n, dtype=bool),
    )


def window_segments(readings: Readings, window_minutes: int) -> tuple[np.ndarray, np.ndarray]:
    """Start offset and length of each non-empty check window; readings are
    sorted by cell, so each window is one contiguous run."""
    window = readings.cell // window_minutes
    if not len(window):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, window[1:] != window[:-1]])
    lengths = np.diff(np.r_[starts, len(window)])
    return starts, lengths


def inject_frozen(readings: Readings, rate: float, rules: Rules, rng: np.random.Generator) -> int:
    """Hold a value for 10-40 consecutive readings on `rate` of user-days.

    Each episode is placed so it covers at least one whole epoch-aligned
    check window with enough readings, and within the day; otherwise the
    warehouse could not see it and the manifest count would be a lie.
    Returns the number of episodes placed.
    """
    if not len(readings) or rate <= 0:
        return 0
    win = rules.frozen_window_minutes
    row = readings.cell // MINUTES_PER_DAY
    bounds = np.searchsorted(row, np.arange(readings.grid_rows + 1))  # first reading per row
    chosen = np.flatnonzero(rng.random(readings.grid_rows) < rate)
    length = rng.integers(FROZEN_READINGS[0], FROZEN_READINGS[1] + 1, len(chosen))
    first, end = bounds[chosen], bounds[chosen + 1]
    # Several candidate starts per episode; keep the first that works.
    tries = rng.random((len(chosen), FROZEN_START_TRIES))
    start = first[:, None] + (tries * np.maximum(end - first, 1)[:, None]).astype(np.int64)
    start = np.minimum(start, np.maximum(end - 1, first)[:, None])
    ok, need = frozen_placement(readings.cell, start, length[:, None], end[:, None], win, rules)
    usable = ok.any(axis=1)
    pick = ok.argmax(axis=1)[usable]
    start = start[usable, pick]
    length = np.maximum(length[usable], need[usable, pick])
    offsets = np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length)
    index = np.repeat(start, length) + offsets
    readings.heart_rate[index] = np.repeat(readings.heart_rate[start], length)
    readings.frozen[index] = True
    return int(usable.sum())


def frozen_placement(
    cell: np.ndarray, start: np.ndarray, length: np.ndarray, end: np.ndarray, win: int, rules: Rules
) -> tuple[np.ndarray, np.ndarray]:
    """For candidate episode starts: whether they work, and the episode length
    needed to cover the first check window that begins at or after them."""
    safe_start = np.minimum(start, len(cell) - 1)
    window_start = -(-cell[safe_start] // win) * win  # round up to a window boundary
    same_day = (window_start // MINUTES_PER_DAY) == (cell[safe_start] // MINUTES_PER_DAY)
    inside = np.searchsorted(cell, window_start)
    after = np.searchsorted(cell, window_start + win)
    need = after - start
    total = np.maximum(length, need)
    last = np.minimum(start + total - 1, len(cell) - 1)
    ok = (
        same_day
        & (start < end)
        & (after - inside >= rules.frozen_min_readings)
        & (total <= FROZEN_READINGS[1])
        & (start + total <= end)
        # No freezing across a charging break: the episode stays dense.
        & (cell[last] - cell[safe_start] < 2 * total)
    )
    return ok, need


def protect_frozen_windows(readings: Readings, rules: Rules) -> None:
    """Keep point faults out of every window an episode touches: a null or an
    out-of-range value there would make detection depend on how the
    warehouse treats invalid readings."""
    starts, lengths = window_segments(readings, rules.frozen_window_minutes)
    if not len(starts):
        return
    touched = np.maximum.reduceat(readings.frozen, starts)
    readings.shielded |= np.repeat(touched, lengths)


@dataclass
class PointFaults:
    nulls: int
    out_of_range: int
    boundary: int


def inject_point_faults(
    readings: Readings, cfg: GeneratorConfig, rules: Rules, rng: np.random.Generator
) -> PointFaults:
    """Nulls, implausible values and exact-bound values, on disjoint readings
    so each count is exact."""
    draw = rng.random(len(readings))
    free = ~readings.shielded
    cut_null = cfg.null_rate
    cut_bad = cut_null + cfg.out_of_range_rate
    null = free & (draw < cut_null)
    bad = free & (draw >= cut_null) & (draw < cut_bad)
    edge = free & (draw >= cut_bad) & (draw < cut_bad + BOUNDARY_SHARE)
    readings.is_null |= null
    readings.heart_rate[null] = 0  # masked out when written
    readings.heart_rate[bad] = rng.choice(rules.out_of_range_values, int(bad.sum()))
    bounds = np.array([rules.heart_rate_min, rules.heart_rate_max], dtype=np.int16)
    readings.heart_rate[edge] = rng.choice(bounds, int(edge.sum()))
    readings.injected |= bad | edge
    return PointFaults(int(null.sum()), int(bad.sum()), int(edge.sum()))


def break_natural_plateaus(readings: Readings, rules: Rules) -> int:
    """Nudge one reading by +1 in any window whose valid readings are all
    equal but not all frozen, so the only constant windows are injected ones.

    The test is "at least two equal readings", stricter than the warehouse's
    minimum, so the guarantee holds even if duplicates are counted there.
    Returns how many readings were nudged.
    """
    starts, lengths = window_segments(readings, rules.frozen_window_minutes)
    if not len(starts):
        return 0
    hr = readings.heart_rate
    valid = ~readings.is_null & (hr >= rules.heart_rate_min) & (hr <= rules.heart_rate_max)
    count = np.add.reduceat(valid.astype(np.int32), starts)
    low = np.minimum.reduceat(np.where(valid, hr, np.int16(32767)), starts)
    high = np.maximum.reduceat(np.where(valid, hr, np.int16(-1)), starts)
    constant = (count >= 2) & (low == high)
    editable = valid & ~readings.frozen & ~readings.injected & np.repeat(constant, lengths)
    candidates = np.flatnonzero(editable)
    window = readings.cell[candidates] // rules.frozen_window_minutes
    _, first = np.unique(window, return_index=True)
    hr[candidates[first]] += 1  # natural values stop at 200, far from the bound
    return len(first)


def count_frozen_windows(readings: Readings, rules: Rules) -> int:
    """Windows the warehouse should flag: only frozen readings, enough of them."""
    starts, _ = window_segments(readings, rules.frozen_window_minutes)
    if not len(starts):
        return 0
    frozen = np.add.reduceat(readings.frozen.astype(np.int32), starts)
    total = np.add.reduceat(np.ones(len(readings), dtype=np.int32), starts)
    return int(((frozen == total) & (frozen >= rules.frozen_min_readings)).sum())


def duplicate_order(n: int, rate: float, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Row order with exact duplicates spliced in: each copy lands right
    after its original or a few rows later, as a retried upload would.
    Returns source indices in output order and the number of copies."""
    copies = np.flatnonzero(rng.random(n) < rate)
    shift = np.where(
        rng.random(len(copies)) < DUPLICATE_RIGHT_AFTER,
        0,
        rng.integers(1, DUPLICATE_MAX_SHIFT + 1, len(copies)),
    )
    # Originals sort at 2i, a copy just after the row it follows at 2j + 1.
    keys = np.r_[2 * np.arange(n), 2 * np.minimum(copies + shift, n - 1) + 1]
    order = np.argsort(keys, kind="stable")
    return np.r_[np.arange(n), copies][order], len(copies)


# --- writing ----------------------------------------------------------------


def csv_line(values: Sequence[str]) -> bytes:
    """One RFC 4180 line, used for the headers: the contract's names, as is."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue().encode("utf-8")


def vitals_schema() -> pa.Schema:
    """Dictionary-encoded text columns: the writer expands them in C++,
    cheaper than materialising a string per row in Python."""
    text = pa.dictionary(pa.int32(), pa.string())
    types = {"reading_ts": pa.timestamp("s"), "heart_rate": pa.int16()}
    return pa.schema([pa.field(name, types.get(name, text)) for name in VITALS.header])


def vitals_file_names(cfg: GeneratorConfig) -> list[str]:
    """One file, or one per day named by its UTC date (matches vitals*.csv)."""
    if cfg.split == "day":
        days = (cfg.start_date + timedelta(days=d) for d in range(cfg.days))
        return [f"vitals_{day.isoformat()}.csv" for day in days]
    return [VITALS_NAME]


class VitalsSink:
    """Writes vitals rows to one file, or one per day, via temporary names
    the loader's globs cannot match; `commit` renames them into place."""

    def __init__(self, out: Path, cfg: GeneratorConfig) -> None:
        self.out = out
        self.split_by_day = cfg.split == "day"
        self.names = vitals_file_names(cfg)
        self.rows = [0] * len(self.names)
        self.schema = vitals_schema()
        # Arrow's default batch of 1024 rows formats several times slower
        # than 8192 (measured); larger batches get slower again.
        options = pacsv.WriteOptions(include_header=False, quoting_style="needed", batch_size=8192)
        self.streams = []
        self.writers = []
        for name in self.names:
            stream = pa.OSFile(str(self._partial(name)), "wb")
            stream.write(csv_line(VITALS.header))
            self.streams.append(stream)
            self.writers.append(pacsv.CSVWriter(stream, self.schema, write_options=options))

    def _partial(self, name: str) -> Path:
        return self.out / f".{name}.partial"

    def arrange(self, source: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Output order for a chunk: as is, or grouped by day when splitting
        (a stable sort, so each day keeps its rows' order)."""
        if not self.split_by_day:
            return source
        return source[np.argsort(day[source], kind="stable")]

    def write(self, table: pa.Table, day: np.ndarray) -> None:
        """Append rows; `day` is each row's day, sorted when splitting."""
        if not self.split_by_day:
            self._write(0, table)
            return
        bounds = np.searchsorted(day, np.arange(len(self.names) + 1))
        for d in range(len(self.names)):
            if bounds[d + 1] > bounds[d]:
                self._write(d, table.slice(bounds[d], bounds[d + 1] - bounds[d]))

    def _write(self, index: int, table: pa.Table) -> None:
        self.writers[index].write_table(table)
        self.rows[index] += table.num_rows

    def close(self) -> None:
        for writer, stream in zip(self.writers, self.streams):
            writer.close()
            stream.close()

    def abort(self) -> None:
        """After a failure: close what can be closed and delete the partial
        files, so a failed run leaves no debris behind."""
        for closable in (*self.writers, *self.streams):
            try:
                closable.close()
            except (OSError, pa.ArrowException):
                pass
        for name in self.names:
            self._partial(name).unlink(missing_ok=True)

    def commit(self) -> dict[str, int]:
        for name in self.names:
            os.replace(self._partial(name), self.out / name)
        return dict(zip(self.names, self.rows))


def readings_table(pop: Population, readings: Readings, source: np.ndarray, first: int, last: int,
                   start_epoch: int, schema: pa.Schema) -> pa.Table:
    """The chunk's rows in output order. Text columns index per-user
    dictionaries holding only this chunk's users, so they stay small."""
    user = readings.user[source]
    local = pa.array(user - first, pa.int32())
    chunk_cities = pop.cities.take(pa.array(pop.city_index[first:last]))
    minute = readings.cell[source] % MINUTES_PER_DAY
    ts = (
        start_epoch
        + readings.day[source].astype(np.int64) * SECONDS_PER_DAY
        + minute * 60
        + pop.second_offset[user]
    )
    columns = [
        pa.DictionaryArray.from_arrays(local, pop.user_ids.slice(first, last - first)),
        pa.DictionaryArray.from_arrays(local, pop.full_names.slice(first, last - first)),
        pa.DictionaryArray.from_arrays(local, chunk_cities),
        pa.DictionaryArray.from_arrays(local, pop.device_ids.slice(first, last - first)),
        pa.array(ts, pa.timestamp("s")),
        pa.array(readings.heart_rate[source], pa.int16(), mask=readings.is_null[source]),
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def write_subscriptions(path: Path, rows: Sequence[tuple[str, str, str]]) -> None:
    """Small file (about one row per user): the csv module is fast enough and
    quotes only when needed."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(SUBSCRIPTIONS.header)
        writer.writerows(rows)


# --- the output directory ---------------------------------------------------


def prepare_out_dir(out: Path, landing_names: Sequence[str]) -> None:
    """Create `out`, and remove landing files a previous run of this
    generator left there that this run will not overwrite (say vitals.csv
    after switching to --split day): the loader would load them too.
    Files the generator did not write are never deleted: refuse instead."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as problem:
        raise UserError(f"cannot create --out {out}: {problem.strerror}") from None
    keep = {SUBSCRIPTIONS_NAME, USERS_NAME, CONSENT_EVENTS_NAME, *landing_names}
    stale = [p for d in DATASETS for p in d.files(out) if p.name not in keep]
    if not stale:
        return
    ours: set[str] = set()
    previous = out / MANIFEST_NAME
    if previous.is_file():
        try:
            ours = set(json.loads(previous.read_text(encoding="utf-8")).get("files", {}))
        except (ValueError, AttributeError):
            ours = set()
    foreign = [p.name for p in stale if p.name not in ours]
    if foreign:
        raise UserError(
            f"{out} holds landing files this generator did not write "
            f"({', '.join(sorted(foreign)[:3])}{', ...' if len(foreign) > 3 else ''}); "
            "remove them or choose another --out"
        )
    for path in stale:
        path.unlink()


# --- progress ---------------------------------------------------------------


class Progress:
    """A one-line bar on stderr, only when someone is watching."""

    def __init__(self, total_users: int, enabled: bool) -> None:
        self.total = total_users
        self.enabled = enabled and sys.stderr.isatty()

    def update(self, users_done: int, rows: int) -> None:
        if not self.enabled:
            return
        share = users_done / self.total
        bar = "#" * int(share * 30)
        sys.stderr.write(f"\r[{bar:<30}] {share:4.0%}  {rows:,} readings")
        sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 70 + "\r")
            sys.stderr.flush()


# --- the whole run ----------------------------------------------------------


@dataclass
class FaultCounts:
    frozen_episodes: int = 0
    frozen_readings: int = 0
    frozen_windows: int = 0
    null_heart_rate: int = 0
    out_of_range_heart_rate: int = 0
    boundary_heart_rate: int = 0
    duplicate_readings: int = 0
    natural_plateaus_broken: int = 0


@dataclass
class GenerationResult:
    manifest: dict[str, Any]
    seconds: float = 0.0
    files: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(self.files.values())

    def summary(self, out: Path) -> str:
        rate = self.rows / self.seconds if self.seconds > 0 else float("inf")
        return (
            f"wrote {self.rows:,} rows in {len(self.files)} files to {out} "
            f"in {self.seconds:.1f} s ({rate:,.0f} rows/s)"
        )


def users_per_chunk(days: int) -> int:
    return max(1, CHUNK_CELLS // (days * MINUTES_PER_DAY))


def damage(readings: Readings, cfg: GeneratorConfig, rules: Rules, rng: np.random.Generator,
           counts: FaultCounts) -> None:
    """Inject one chunk's faults, in an order that keeps every count exact:
    frozen episodes first, point faults away from them, then natural
    plateaus are broken so only injected episodes look frozen."""
    counts.frozen_episodes += inject_frozen(readings, cfg.frozen_rate, rules, rng)
    counts.frozen_readings += int(readings.frozen.sum())
    protect_frozen_windows(readings, rules)
    faults = inject_point_faults(readings, cfg, rules, rng)
    counts.null_heart_rate += faults.nulls
    counts.out_of_range_heart_rate += faults.out_of_range
    counts.boundary_heart_rate += faults.boundary
    counts.natural_plateaus_broken += break_natural_plateaus(readings, rules)
    counts.frozen_windows += count_frozen_windows(readings, rules)


def generate_vitals(cfg: GeneratorConfig, pop: Population, rules: Rules, sink: VitalsSink,
                    progress: Progress) -> FaultCounts:
    """Simulate, damage and write readings, one chunk of users at a time.

    Each chunk has its own seed stream, so chunks are independent. Writing
    (CSV formatting and I/O, which release the GIL) runs on a second thread
    while the next chunk is simulated; waiting for the previous write before
    queueing the next keeps order, and memory, to two chunks.
    """
    counts = FaultCounts()
    epoch = int(datetime(cfg.start_date.year, cfg.start_date.month, cfg.start_date.day,
                         tzinfo=timezone.utc).timestamp())
    step = users_per_chunk(cfg.days)
    written = 0
    with ThreadPoolExecutor(max_workers=1) as writer:
        pending: Future[None] | None = None
        for chunk, first in enumerate(range(0, cfg.users, step)):
            last = min(first + step, cfg.users)
            rng = np.random.default_rng([cfg.seed, STREAM_READINGS, chunk])
            readings = simulate_readings(pop, first, last, cfg.days, rng)
            damage(readings, cfg, rules, rng, counts)
            source, copies = duplicate_order(len(readings), cfg.duplicate_rate, rng)
            counts.duplicate_readings += copies
            source = sink.arrange(source, readings.day)
            table = readings_table(pop, readings, source, first, last, epoch, sink.schema)
            if pending is not None:
                pending.result()
            pending = writer.submit(sink.write, table, readings.day[source])
            written += len(source)
            progress.update(last, written)
        if pending is not None:
            pending.result()
    return counts


def build_users(cfg: GeneratorConfig, pop: Population, pool: Sequence[City],
                subs: SubscriptionResult, tiers: Sequence[str]) -> people.Users:
    """users.csv's columns, from streams of their own: the same people as
    vitals.csv (ids, names, cities) and their plans in subscriptions.csv."""
    rng = np.random.default_rng([cfg.seed, STREAM_USERS])
    plans = people.plans_from_rows(subs.rows, pop.user_ids.to_pylist(), tiers, cfg.start_date)
    return people.build_users(
        pop.user_ids, pop.names, pop.cities, pop.city_index, [c.locale for c in pool], plans,
        cfg.start_date, cfg.days, cfg.consent_share, rng,
    )


def write_users(path: Path, users: people.Users, last_login: np.ndarray, cfg: GeneratorConfig
                ) -> tuple[int, dict[str, int]]:
    """users.csv via a temporary name; returns the rows written and the
    injected faults per kind."""
    rng = np.random.default_rng([cfg.seed, STREAM_USER_FAULTS])
    table, kinds = people.users_text_table(
        users, last_login, cfg.bad_user_rate, cfg.duplicate_user_rate, rng
    )
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed", batch_size=8192)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with pa.OSFile(str(partial), "wb") as stream:
            stream.write(csv_line(USERS.header))
            pacsv.write_csv(table, stream, write_options=options)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
    return table.num_rows, kinds


@dataclass(frozen=True)
class ConsentResult:
    rows: int  # lines written, header excluded
    changes: int  # distinct consent events
    users: int  # users with at least one change
    faults: dict[str, int]


def write_consent_events(path: Path, cfg: GeneratorConfig, pop: Population, users: people.Users
                         ) -> ConsentResult:
    """consent_events.csv from streams of its own, so the other files keep
    their bytes. Small (a share of users, one or two events each): the csv
    module is fast enough."""
    epoch = int(datetime(cfg.start_date.year, cfg.start_date.month, cfg.start_date.day,
                         tzinfo=timezone.utc).timestamp())
    consent = users.columns["consent_analytics"].to_numpy(zero_copy_only=False)
    changes = people.consent_changes(
        pop.user_ids.to_pylist(), consent, users.created_at, epoch, cfg.days,
        cfg.consent_change_rate, np.random.default_rng([cfg.seed, STREAM_CONSENT]),
    )
    rows, faults = people.consent_text_rows(
        changes, cfg.bad_consent_rate, np.random.default_rng([cfg.seed, STREAM_CONSENT_FAULTS])
    )
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CONSENT_EVENTS.header)
        writer.writerows(rows)
    return ConsentResult(len(rows), len(changes), len({c.user_id for c in changes}), faults)


def build_manifest(
    cfg: GeneratorConfig,
    rules: Rules,
    pool: Sequence[City],
    pop: Population,
    subs: SubscriptionResult,
    faults: FaultCounts,
    files: dict[str, int],
    user_faults: dict[str, int],
    event_counts: ev.EventCounts,
    consent: ConsentResult,
) -> dict[str, Any]:
    """What was asked for and what was injected. No timestamps or paths, so
    it is as reproducible as the data."""
    users_per_city = np.bincount(pop.city_index, minlength=len(pool))
    vitals_rows = sum(v for k, v in files.items() if k.startswith("vitals"))
    event_lines = sum(v for k, v in files.items() if k.startswith("events"))
    bad_users = sum(v for k, v in user_faults.items() if k != "duplicate_user_id")
    return {
        "generator": "scripts/generate_data.py",
        "seed": cfg.seed,
        "arguments": cfg.data_arguments(),
        "contract": {"vitals": VITALS.header, "subscriptions": SUBSCRIPTIONS.header,
                     "users": USERS.header, "events": [c.name for c in EVENTS.columns],
                     "consent_events": CONSENT_EVENTS.header},
        "rules": asdict(rules),
        "tiers": subscription_tiers(),
        "cities": {c.name: int(n) for c, n in zip(pool, users_per_city)},
        "counts": {
            "users": cfg.users,
            "vitals_rows": vitals_rows,
            "distinct_readings": vitals_rows - faults.duplicate_readings,
            "subscription_rows": len(subs.rows),
            "user_rows": files[USERS_NAME],
            "event_lines": event_lines,
            "distinct_events": event_counts.events,
            "events_by_type": event_counts.by_type,
            "consent_event_lines": consent.rows,
            "consent_changes": consent.changes,
            "users_changing_consent": consent.users,
        },
        # Reading-level counts are over distinct readings (before duplicate
        # lines are added); duplicate_readings counts the extra lines. Every
        # bad user row or event line has exactly one fault, so the loader
        # quarantines exactly bad + duplicate lines.
        "faults": {
            "frozen_episodes": faults.frozen_episodes,
            "frozen_readings": faults.frozen_readings,
            "frozen_windows": faults.frozen_windows,
            "null_heart_rate": faults.null_heart_rate,
            "out_of_range_heart_rate": faults.out_of_range_heart_rate,
            "duplicate_readings": faults.duplicate_readings,
            "duplicate_subscription_rows": subs.duplicate_subscription_rows,
            "upgraded_users": subs.upgraded_users,
            "upgrade_rows": subs.upgrade_rows,
            "users_without_subscription": subs.users_without_subscription,
            "bad_user_rows": bad_users,
            "duplicate_user_rows": user_faults["duplicate_user_id"],
            "bad_event_lines": sum(event_counts.faults.values()),
            "duplicate_event_lines": event_counts.duplicate_lines,
            # Each one quarantined once (a duplicate_line's copy included).
            "bad_consent_lines": sum(consent.faults.values()),
        },
        "fault_kinds": {
            "users": {k: v for k, v in user_faults.items() if k != "duplicate_user_id"},
            "events": event_counts.faults,
            "consent_events": consent.faults,
        },
        "valid_edge_cases": {
            "boundary_heart_rate": faults.boundary_heart_rate,
            "natural_plateaus_broken": faults.natural_plateaus_broken,
        },
        "files": files,
    }


def generate(cfg: GeneratorConfig, progress: bool = True) -> GenerationResult:
    """Write subscriptions, vitals, users, events, consent events and the
    manifest into cfg.out."""
    cfg.validate()
    began = time.perf_counter()
    rules = load_rules()
    tiers = subscription_tiers()
    out = Path(cfg.out)
    event_names = ev.event_file_names(cfg.start_date, cfg.days, cfg.split)
    prepare_out_dir(out, [*vitals_file_names(cfg), *event_names])
    pop, pool = build_population(cfg)
    subs = build_subscriptions(cfg, tiers)
    sink = VitalsSink(out, cfg)
    events_sink: ev.EventsSink | None = None
    bar = Progress(cfg.users, enabled=progress and not cfg.quiet)
    try:
        faults = generate_vitals(cfg, pop, rules, sink, bar)
        sink.close()
        bar.finish()
        users = build_users(cfg, pop, pool, subs, tiers)
        events_sink = ev.EventsSink(out, cfg.start_date, cfg.days, cfg.split)
        inputs = ev.EventInputs(
            user_ids=pop.user_ids,
            ip_address=pa.array(users.ip_address, pa.string()),
            created_at=users.created_at,
            status=users.status,
        )
        event_counts, event_logins = ev.generate_events(
            inputs, cfg.start_date, cfg.days, cfg.events_per_user_day, cfg.bad_event_rate,
            cfg.duplicate_event_rate, cfg.seed, STREAM_EVENTS, events_sink,
        )
        events_sink.close()
        last_login = np.maximum(users.last_login_at, event_logins)
        user_rows, user_faults = write_users(out / USERS_NAME, users, last_login, cfg)
    except BaseException:
        sink.abort()
        if events_sink is not None:
            events_sink.abort()
        raise
    finally:
        bar.finish()
    write_subscriptions(out / SUBSCRIPTIONS_NAME, subs.rows)
    consent = write_consent_events(out / CONSENT_EVENTS_NAME, cfg, pop, users)
    files = {SUBSCRIPTIONS_NAME: len(subs.rows), **sink.commit(), USERS_NAME: user_rows,
             **events_sink.commit(), CONSENT_EVENTS_NAME: consent.rows}
    manifest = build_manifest(cfg, rules, pool, pop, subs, faults, files, user_faults, event_counts,
                              consent)
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    (out / MANIFEST_NAME).write_text(text, encoding="utf-8", newline="\n")
    return GenerationResult(manifest=manifest, seconds=time.perf_counter() - began, files=files)
