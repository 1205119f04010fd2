"""What shapes a generator run: the arguments (GeneratorConfig), the fixed
model constants, the city list and the data-quality rules read from
dbt_project.yml.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sflux.core import paths
from sflux.core.errors import UserError


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
STREAM_CONSENT, STREAM_CONSENT_FAULTS, STREAM_TENANTS = 7, 8, 9


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




def day_slices(day: np.ndarray, n_days: int):
    """(day index, offset, length) of each non-empty run of rows of one day,
    for rows sorted by `day` (0 .. n_days - 1): how the writers split a
    dataset into one file per day."""
    bounds = np.searchsorted(day, np.arange(n_days + 1))
    for d in range(n_days):
        if bounds[d + 1] > bounds[d]:
            yield d, int(bounds[d]), int(bounds[d + 1] - bounds[d])
