#!/usr/bin/env python3
"""Generate synthetic SantéFlux landing files (subscriptions, vitals, users,
events, consent events and a manifest of injected faults). The logic lives in sflux.generate; this file
only turns the command line into a GeneratorConfig.

Example: python scripts/generate_data.py --out .santeflux/landing --users 250 --days 7 --seed 42
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import NoReturn

from sflux.core.errors import UserError
from sflux.generate import config as gen
from sflux.generate import run


class OneLineParser(argparse.ArgumentParser):
    """argparse prints the whole usage block on an error; one line is easier
    to read in make output. Exit code 2 as argparse does."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except where there is none worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or action.default in (None, False):
            return action.help
        return super()._get_help_string(action)


def iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    d = gen.default
    parser = OneLineParser(
        prog="generate_data.py",
        description=(
            "Write subscriptions.csv, vitals CSV file(s), users.csv, events JSON Lines "
            "file(s), consent_events.csv and generation_manifest.json into --out, following "
            "the raw landing "
            "contract (sflux/ingest/contract.py). "
            "Same arguments and seed give byte-identical files. The manifest counts "
            "every injected fault, so checks downstream can compare exact numbers."
        ),
        formatter_class=DefaultsFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="output directory (created if missing). Landing files left there by "
                             "an earlier run of this generator that this run does not overwrite "
                             "are removed; other files matching the landing globs make it refuse")
    parser.add_argument("--users", type=int, default=d("users"), metavar="N",
                        help="number of users (each with one device, name and city)")
    parser.add_argument("--days", type=int, default=d("days"), metavar="D",
                        help="number of days of readings, about one per minute while worn")
    parser.add_argument("--seed", type=int, default=d("seed"), metavar="S",
                        help="random seed (0 or more)")
    parser.add_argument("--start-date", type=iso_date, default=d("start_date"),
                        metavar="YYYY-MM-DD",
                        help="first day of readings, YYYY-MM-DD (UTC); fixed, never today, "
                             "so output does not depend on when it runs")
    parser.add_argument("--split", choices=gen.SPLITS, default=d("split"),
                        help="none: one vitals.csv and one events.jsonl; day: one "
                             "vitals_YYYY-MM-DD.csv and one events_YYYY-MM-DD.jsonl per day")
    parser.add_argument("--cities", type=int, default=d("cities"), metavar="K",
                        help=f"size of the city pool (1..{len(gen.CITIES)}); users are spread "
                             "over it with Zipf-like weights, so some cities are small")
    parser.add_argument("--events-per-user-day", type=float, default=d("events_per_user_day"),
                        metavar="E",
                        help="mean app/web events per user and day (per-user activity varies; "
                             "closed accounts have none); 0 writes empty event files")
    parser.add_argument("--consent-share", type=float, default=d("consent_share"),
                        metavar="SHARE",
                        help="share of users with consent_analytics = true (0..1)")
    parser.add_argument("--consent-change-rate", type=float, default=d("consent_change_rate"),
                        metavar="SHARE",
                        help="share of users (0..1) with a consent change in consent_events.csv "
                             "within the generated days: a withdraw if consent_analytics is "
                             "true, else a grant; about a fifth of them change back later")
    faults = parser.add_argument_group("fault rates (each between 0 and 1)")
    rate_help = {
        "frozen_rate": "share of user-days with a frozen-sensor episode "
                       "(one value held for 10-40 consecutive readings)",
        "null_rate": "share of readings with an empty heart_rate",
        "out_of_range_rate": "share of readings with an implausible heart_rate "
                             "(outside the dbt vars heart_rate_min_bpm..heart_rate_max_bpm)",
        "duplicate_rate": "share of readings written twice as identical lines",
        "duplicate_subscription_rate": "share of users with one subscription line written twice",
        "upgrade_rate": "share of users who move to a higher tier: extra subscription rows "
                        "with later start_date, about half of them within the generated days",
        "no_subscription_rate": "share of users with readings but no subscription row",
        "bad_user_rate": "share of users.csv rows with one bad field (consent not true/false, "
                         "unparseable or implausible date_of_birth, empty email, unknown "
                         "gender, unparseable created_at)",
        "duplicate_user_rate": "share of users.csv rows written twice (same user_id)",
        "bad_event_rate": "share of event lines with one fault (malformed JSON, missing "
                          "user_id, bad event_ts, unknown event_type, amount_eur on a "
                          "non-purchase, no amount_eur on a purchase)",
        "duplicate_event_rate": "share of event lines written twice (same event_id)",
        "bad_consent_rate": "share of consent_events.csv lines with one fault (unknown action "
                            "or consent_type, bad event_ts, missing user_id, wrong field "
                            "count, or the line written twice)",
    }
    for name, text in rate_help.items():
        faults.add_argument("--" + name.replace("_", "-"), type=float, default=d(name),
                            metavar="RATE", help=text)
    parser.add_argument("--quiet", action="store_true",
                        help="print nothing on success (no progress bar, no summary line)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = gen.GeneratorConfig(**vars(args))
    try:
        result = run.generate(config)
    except UserError as problem:
        print(f"generate_data.py: error: {problem}", file=sys.stderr)
        return 2
    except OSError as problem:  # disk full, permissions: not a usage error
        print(f"generate_data.py: error: {problem}", file=sys.stderr)
        return 1
    if not config.quiet:
        print(result.summary(config.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
