"""The per-minute heart-rate signal (rhythm, bursts, wear) and the faults
injected into it (frozen sensors, nulls, out-of-range values, duplicates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sflux.generate.config import (
    BEDTIME,
    BOUNDARY_SHARE,
    BURST_BPM,
    BURST_MINUTES,
    BURST_WINDOW,
    CHARGE_DAY_SHARE,
    CHARGE_JITTER,
    CHARGE_MINUTES,
    DAILY_DRIFT_SD,
    DROPOUT_SHARE,
    DUPLICATE_MAX_SHIFT,
    DUPLICATE_RIGHT_AFTER,
    FROZEN_READINGS,
    FROZEN_START_TRIES,
    GeneratorConfig,
    MINUTES_PER_DAY,
    NATURAL_MAX,
    NATURAL_MIN,
    NOISE_SD,
    RHYTHM_LOW_MINUTE,
    Rules,
    WAKE,
)
from sflux.generate.population import Population


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


