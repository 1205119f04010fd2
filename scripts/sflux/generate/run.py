"""One whole generator run: population, subscriptions, vitals, users, events
and consent events, then the manifest that counts every injected fault.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from sflux.generate import events as ev
from sflux.generate import people
from sflux.generate.config import (
    CHUNK_CELLS,
    CONSENT_EVENTS_NAME,
    City,
    GeneratorConfig,
    MANIFEST_NAME,
    MINUTES_PER_DAY,
    Rules,
    STREAM_CONSENT,
    STREAM_CONSENT_FAULTS,
    STREAM_EVENTS,
    STREAM_READINGS,
    STREAM_TENANTS,
    STREAM_USERS,
    STREAM_USER_FAULTS,
    SUBSCRIPTIONS_NAME,
    USERS_NAME,
    load_rules,
)
from sflux.generate.consent import consent_changes, consent_text_rows
from sflux.generate.population import Population, build_population, zipf_weights
from sflux.generate.readings import (
    Readings,
    break_natural_plateaus,
    count_frozen_windows,
    duplicate_order,
    inject_frozen,
    inject_point_faults,
    protect_frozen_windows,
    simulate_readings,
)
from sflux.generate.subscriptions import SubscriptionResult, build_subscriptions
from sflux.generate.tenants import assign_tenants
from sflux.generate.writing import (
    Progress,
    VitalsSink,
    csv_line,
    prepare_out_dir,
    readings_table,
    vitals_file_names,
    write_subscriptions,
)
from sflux.ingest.contract import (
    CONSENT_EVENTS,
    EVENTS,
    SUBSCRIPTIONS,
    USERS,
    VITALS,
    subscription_tiers,
)


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
    tenant = assign_tenants(pop.city_index, zipf_weights(len(pool)),
                            np.random.default_rng([cfg.seed, STREAM_TENANTS]))
    return people.build_users(
        pop.user_ids, pop.names, pop.cities, pop.city_index, [c.locale for c in pool], plans,
        cfg.start_date, cfg.days, cfg.consent_share, rng, tenant,
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
    changes = consent_changes(
        pop.user_ids.to_pylist(), consent, users.created_at, epoch, cfg.days,
        cfg.consent_change_rate, np.random.default_rng([cfg.seed, STREAM_CONSENT]),
    )
    rows, faults = consent_text_rows(
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
