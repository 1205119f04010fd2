"""The DPO's declaration of the differentially private release:
conf/differential_privacy.yml, read strictly.

It is the only source of the budget, the public domain and the contribution
bounds. Its path is a constant of the package (not a flag, not an
environment variable), and a file that anyone but its owner may write is
refused: whoever could edit it could raise the budget.
"""

from __future__ import annotations

import datetime as dt
import math
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sflux.core import paths
from sflux.core.errors import UserError

CONFIG_FILE = paths.REPO_ROOT / "conf" / "differential_privacy.yml"
# A release publishes one row per date x event type x region: a domain of
# ten years is already ~1.6M rows. Longer is a typo, not a plan.
MAX_DOMAIN_DAYS = 3660

SECTIONS = {
    "budget": {"period", "total_epsilon"},
    "domain": {"first_date", "last_date"},
    "release": {"epsilon", "max_cells_per_member", "max_events_per_member_cell",
                "max_amount_eur_per_member_cell"},
}


@dataclass(frozen=True)
class DpConfig:
    period: str
    total_epsilon: float
    first_date: dt.date
    last_date: dt.date
    epsilon: float
    max_cells_per_member: int
    max_events_per_member_cell: int
    max_amount_cents_per_member_cell: int

    @property
    def dates(self) -> list[dt.date]:
        days = (self.last_date - self.first_date).days
        return [self.first_date + dt.timedelta(days=d) for d in range(days + 1)]

    @property
    def count_sensitivity(self) -> int:
        """L1: one member moves at most this many events, over all cells."""
        return self.max_cells_per_member * self.max_events_per_member_cell

    @property
    def revenue_sensitivity_cents(self) -> int:
        return self.max_cells_per_member * self.max_amount_cents_per_member_cell

    def dbt_settings(self, release_id: str) -> dict[str, Any]:
        """What the dbt model int_event_cells_clipped needs (var dp_release)."""
        return {
            "release_id": release_id,
            "first_date": self.first_date.isoformat(),
            "last_date": self.last_date.isoformat(),
            "max_cells_per_member": self.max_cells_per_member,
            "max_events_per_member_cell": self.max_events_per_member_cell,
            "max_amount_cents_per_member_cell": self.max_amount_cents_per_member_cell,
        }


def check_owner_only_writable(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UserError(f"{path} has mode {mode:04o}: others could raise the privacy budget;"
                        f" only the DPO may write it: chmod go-w {path}")


def load(path: Path = CONFIG_FILE) -> DpConfig:
    """The release's settings, or a one-line UserError naming the fault."""
    try:
        check_owner_only_writable(path)
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"DP release settings {path} not found") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    return parse(document, str(path))


def parse(document: object, where: str) -> DpConfig:
    if not isinstance(document, dict) or set(document) != set(SECTIONS):
        found = sorted(document) if isinstance(document, dict) else type(document).__name__
        raise UserError(f"{where}: needs exactly the sections {sorted(SECTIONS)}, found {found}")
    for section, fields in SECTIONS.items():
        spec = document[section]
        if not isinstance(spec, dict) or set(spec) != fields:
            found = sorted(spec) if isinstance(spec, dict) else spec
            raise UserError(f"{where}: section {section!r} needs exactly {sorted(fields)}, found {found}")
    budget, domain, release = document["budget"], document["domain"], document["release"]
    config = DpConfig(
        period=_period(budget["period"], where),
        total_epsilon=_epsilon(budget["total_epsilon"], f"{where}: budget.total_epsilon"),
        first_date=_date(domain["first_date"], f"{where}: domain.first_date"),
        last_date=_date(domain["last_date"], f"{where}: domain.last_date"),
        epsilon=_epsilon(release["epsilon"], f"{where}: release.epsilon"),
        max_cells_per_member=_positive_int(release["max_cells_per_member"],
                                           f"{where}: release.max_cells_per_member"),
        max_events_per_member_cell=_positive_int(release["max_events_per_member_cell"],
                                                 f"{where}: release.max_events_per_member_cell"),
        max_amount_cents_per_member_cell=_cents(release["max_amount_eur_per_member_cell"],
                                                f"{where}: release.max_amount_eur_per_member_cell"),
    )
    days = (config.last_date - config.first_date).days + 1
    if not 1 <= days <= MAX_DOMAIN_DAYS:
        raise UserError(f"{where}: the domain must span 1 to {MAX_DOMAIN_DAYS} days,"
                        f" got {config.first_date} .. {config.last_date}")
    if config.epsilon > config.total_epsilon:
        raise UserError(f"{where}: release.epsilon {config.epsilon} exceeds budget.total_epsilon"
                        f" {config.total_epsilon}")
    return config


def _period(value: object, where: str) -> str:
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not text or not all(c.isalnum() or c in "-_." for c in text):
        raise UserError(f"{where}: budget.period must be a name like \"2026\", got {value!r}")
    return text


def _epsilon(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise UserError(f"{where} must be a finite number > 0, got {value!r}")
    return float(value)


def _date(value: object, where: str) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise UserError(f"{where} must be a date like 2026-01-31, got {value!r}") from None


def _positive_int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UserError(f"{where} must be a whole number > 0, got {value!r}")
    return value


def _cents(value: object, where: str) -> int:
    """Euros with at most 2 decimals, as whole cents: the noise is integer."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise UserError(f"{where} must be an amount > 0, got {value!r}")
    cents = round(value * 100)
    if abs(cents - value * 100) > 1e-6:
        raise UserError(f"{where} must have at most 2 decimals, got {value!r}")
    return int(cents)
