"""Where things live. Every path honours the same environment variables as
profiles/profiles.yml, so dbt and the scripts always agree."""

from __future__ import annotations

import os
from pathlib import Path

# scripts/sflux/core/paths.py: the editable install keeps the package in
# the repo, so the repo root is three levels up.
REPO_ROOT = Path(__file__).resolve().parents[3]


def home() -> Path:
    return Path(os.environ.get("SANTEFLUX_HOME", str(REPO_ROOT))).resolve()


def data_dir() -> Path:
    default = home() / ".santeflux"
    return Path(os.environ.get("SANTEFLUX_DATA_DIR", str(default))).resolve()


def profiles_file() -> Path:
    return REPO_ROOT / "profiles" / "profiles.yml"


def tiers_seed() -> Path:
    return REPO_ROOT / "seeds" / "subscription_tiers.csv"
