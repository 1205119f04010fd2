#!/usr/bin/env python3
"""Publish a differentially private release of daily event counts and
purchase revenue (analytics.fct_daily_event_counts_dp). `make release` runs it.

A release spends privacy budget, so it is an explicit, audited act and never
part of a `dbt build`. Everything that decides how private it is (the
budget, its period, the public domain of dates, the contribution bounds,
the epsilon of one release) comes from the DPO's
conf/differential_privacy.yml: this command has no flag that changes any of
it. The noise comes from OpenDP's discrete Laplace sampler; nothing seeds it.

Steps: dbt builds the clipped exact cells in the restricted zone; under a
lock, raw.dp_budget_ledger records the release's epsilon or refuses it; noise
is added; the noisy table replaces the published one by a drop and a rename;
raw.privacy_audit_log records the release (or the refusal) with the reason.

Example:
  DBT_ENV_SECRET_PSEUDONYM_KEY=$(cat .secrets/pseudonym.key) \\
    .venv/bin/python scripts/release_dp.py --reason "monthly events report"
"""

from __future__ import annotations

import argparse
import os
import sys

from sflux.core import paths
from sflux.core.errors import UserError

PROG = "release_dp"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Publish one differentially private release of daily event counts and "
        "purchase revenue, spending its epsilon from the budget in conf/differential_privacy.yml.",
        epilog="exit codes: 0 released; 1 refused (over budget, bad settings, failed input "
        "build; the refusal is audited); 2 usage error. The budget, domain and bounds are "
        "the DPO's, in conf/differential_privacy.yml: no flag changes them.",
    )
    parser.add_argument("--reason", required=True,
                        help="why this release is made; stored in raw.privacy_audit_log")
    return parser


def main(argv: list[str] | None = None, spark=None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("SANTEFLUX_HOME", str(paths.home()))
    from sflux.core.spark import get_spark
    from sflux.dp import release

    try:
        done = release.run(spark or get_spark(), args.reason)
    except UserError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(f"released {release.PUBLISHED_TABLE}: {done.cells} cells, epsilon {done.epsilon:g};"
          f" period {done.period!r} has spent {done.spent_after:g} of {done.total_epsilon:g}"
          f" (release {done.release_id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
