"""The synthetic data generator: contract, determinism and exact fault counts.

Runs are tiny (tens of users, a day or two) so the whole file takes seconds
and needs no Spark. Fault rates are raised above the defaults so every kind
of fault shows up even at this size.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime, timedelta
from functools import lru_cache
from itertools import groupby
from pathlib import Path

import numpy as np
import pytest

from sflux.core.errors import UserError
from sflux.generate import config as gen_config
from sflux.generate import population as gen_population
from sflux.generate import readings as gen_readings
from sflux.generate import run as gen_run
from sflux.ingest.contract import CONSENT_EVENTS, EVENTS, SUBSCRIPTIONS, USERS, VITALS, subscription_tiers

TS_FORMAT = "%Y-%m-%d %H:%M:%S"  # the contract's yyyy-MM-dd HH:mm:ss
STAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "generate_data.py"


def small_config(out: Path, **overrides: object) -> gen_config.GeneratorConfig:
    base = gen_config.GeneratorConfig(
        out=out,
        users=24,
        days=2,
        seed=7,
        start_date=date(2026, 11, 1),
        frozen_rate=0.3,
        null_rate=0.01,
        out_of_range_rate=0.01,
        duplicate_rate=0.01,
        duplicate_subscription_rate=0.25,
        upgrade_rate=0.4,
        no_subscription_rate=0.2,
        quiet=True,
    )
    return replace(base, **overrides)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("landing")
    result = gen_run.generate(small_config(out), progress=False)
    return out, result.manifest


@lru_cache(maxsize=8)
def _parsed(path: Path, mtime_ns: int) -> tuple[list[str], list[list[str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """Parsed with the csv module, the strictest common reader. Cached:
    several tests read the same module-scoped run."""
    header, rows = _parsed(path, path.stat().st_mtime_ns)
    return list(header), [list(r) for r in rows]


def distinct(rows: list[list[str]]) -> list[list[str]]:
    """Rows with exact duplicates removed, first occurrence kept."""
    return [list(r) for r in dict.fromkeys(tuple(r) for r in rows)]


def file_bytes(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def heart_rate_bounds(manifest: dict) -> tuple[int, int]:
    return manifest["rules"]["heart_rate_min"], manifest["rules"]["heart_rate_max"]


# --- determinism -------------------------------------------------------------


def test_same_seed_gives_identical_bytes(run, tmp_path):
    out, _ = run
    gen_run.generate(small_config(tmp_path / "again"), progress=False)
    assert file_bytes(tmp_path / "again") == file_bytes(out)


def test_other_seed_gives_other_data(run, tmp_path):
    out, _ = run
    gen_run.generate(small_config(tmp_path / "other", seed=8), progress=False)
    assert (tmp_path / "other" / "vitals.csv").read_bytes() != (out / "vitals.csv").read_bytes()
    assert (tmp_path / "other" / "subscriptions.csv").read_bytes() != (
        out / "subscriptions.csv"
    ).read_bytes()


def test_manifest_records_arguments_and_no_clock(run):
    _, manifest = run
    assert manifest["seed"] == 7
    assert manifest["arguments"]["users"] == 24
    assert manifest["arguments"]["start_date"] == "2026-11-01"
    text = json.dumps(manifest)
    assert not re.search(r"\d{2}:\d{2}:\d{2}", text), "manifest must not hold timestamps"


# --- the contract ------------------------------------------------------------


def test_headers_match_the_contract(run):
    out, _ = run
    vitals_first = (out / "vitals.csv").read_bytes().split(b"\n", 1)[0]
    subs_first = (out / "subscriptions.csv").read_bytes().split(b"\n", 1)[0]
    assert vitals_first.decode() == ",".join(VITALS.header)
    assert subs_first.decode() == ",".join(SUBSCRIPTIONS.header)
    assert VITALS.files(out) == [out / "vitals.csv"]
    assert SUBSCRIPTIONS.files(out) == [out / "subscriptions.csv"]


@pytest.mark.parametrize("name", ["vitals.csv", "subscriptions.csv"])
def test_files_are_utf8_lf_rfc4180(run, name):
    out, manifest = run
    raw = (out / name).read_bytes()
    raw.decode("utf-8")
    assert b"\r" not in raw and raw.endswith(b"\n")
    header, rows = read_rows(out / name)
    assert all(len(row) == len(header) for row in rows)
    # No quoted field spans lines: physical lines == records.
    assert raw.count(b"\n") == len(rows) + 1
    assert manifest["files"][name] == len(rows)


def test_names_with_commas_are_quoted(run):
    out, _ = run
    text = (out / "vitals.csv").read_text(encoding="utf-8")
    _, rows = read_rows(out / "vitals.csv")
    comma_names = {row[1] for row in rows if "," in row[1]}
    assert comma_names, "expected some 'Last, First' names"
    for name in comma_names:
        assert f',"{name}",' in text


def test_names_and_cities_include_accents_and_apostrophes(run):
    out, manifest = run
    _, rows = read_rows(out / "vitals.csv")
    cities = {row[2] for row in rows}
    names = {row[1] for row in rows}
    assert set(manifest["cities"]) >= cities
    for values in (cities, names):
        assert any("'" in v for v in values)
        assert any(not v.isascii() for v in values)


def test_people_are_constant_per_user(run):
    out, manifest = run
    _, rows = read_rows(out / "vitals.csv")
    person: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    for user_id, name, city, device, _, _ in rows:
        person[user_id].add((name, city, device))
    assert len(person) == manifest["counts"]["users"]
    assert all(len(v) == 1 for v in person.values())
    assert all(re.fullmatch(r"user_\d{6}", u) for u in person)
    devices = [next(iter(v))[2] for v in person.values()]
    assert all(re.fullmatch(r"dev-[0-9a-f]{8}", d) for d in devices)
    assert len(set(devices)) == len(devices)


def test_user_ids_widen_past_six_digits():
    assert gen_population.user_id_list(3) == ["user_000001", "user_000002", "user_000003"]
    assert gen_population.user_id_width(999_999) == 6
    assert gen_population.user_id_width(1_000_000) == 7


def test_timestamps_parse_and_stay_within_the_days(run):
    out, _ = run
    _, rows = read_rows(out / "vitals.csv")
    stamps = sorted({row[4] for row in rows})
    assert all(STAMP.fullmatch(ts) for ts in stamps)
    # The format sorts like time, so parsing a sample and the ends suffices.
    parsed = [datetime.strptime(ts, TS_FORMAT) for ts in stamps[::500] + stamps[-1:]]
    start = datetime(2026, 11, 1)
    assert start <= parsed[0] and parsed[-1] < start + timedelta(days=2)
    seconds_by_user: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        seconds_by_user[row[0]].add(row[4][-2:])
    # One constant offset per user, and not everyone on :00.
    assert all(len(s) == 1 for s in seconds_by_user.values())
    assert len({next(iter(s)) for s in seconds_by_user.values()}) > 1


def test_heart_rate_looks_physiological(run):
    out, manifest = run
    lo, hi = heart_rate_bounds(manifest)
    _, rows = read_rows(out / "vitals.csv")
    by_hour: dict[int, list[int]] = defaultdict(list)
    for row in rows:
        if row[5] and lo <= int(row[5]) <= hi:
            by_hour[int(row[4][11:13])].append(int(row[5]))
    mean = {h: sum(v) / len(v) for h, v in by_hour.items()}
    assert 50 < sum(map(sum, by_hour.values())) / sum(map(len, by_hour.values())) < 90
    assert mean[3] < mean[15] - 5  # night low, afternoon high
    # Readings roughly once a minute, with wear gaps.
    per_user_day = len(rows) / (manifest["counts"]["users"] * 2)
    assert 900 < per_user_day < 1440


# --- faults match the manifest -----------------------------------------------


def test_reading_faults_match_manifest(run):
    out, manifest = run
    faults = manifest["faults"]
    lo, hi = heart_rate_bounds(manifest)
    _, rows = read_rows(out / "vitals.csv")
    unique = distinct(rows)
    values = [row[5] for row in unique]
    assert len(rows) - len(unique) == faults["duplicate_readings"] > 0
    assert manifest["counts"]["distinct_readings"] == len(unique)
    assert values.count("") == faults["null_heart_rate"] > 0
    numbers = [int(v) for v in values if v]
    assert sum(not lo <= v <= hi for v in numbers) == faults["out_of_range_heart_rate"] > 0
    boundary = manifest["valid_edge_cases"]["boundary_heart_rate"]
    assert sum(v in (lo, hi) for v in numbers) == boundary
    # Same user and timestamp only ever for exact duplicates.
    assert len({(r[0], r[4]) for r in unique}) == len(unique)


def test_duplicates_sit_near_their_original(run):
    out, _ = run
    _, rows = read_rows(out / "vitals.csv")
    seen: dict[tuple[str, ...], int] = {}
    for position, row in enumerate(map(tuple, rows)):
        if row in seen:
            assert 1 <= position - seen[row] <= gen_config.DUPLICATE_MAX_SHIFT + 2
        seen.setdefault(row, position)


def frozen_windows(rows: list[list[str]], manifest: dict) -> list[tuple[str, str]]:
    """(user, window start) of every window the warehouse rule flags:
    enough valid readings, all equal."""
    lo, hi = heart_rate_bounds(manifest)
    minutes = manifest["rules"]["frozen_window_minutes"]
    windows: dict[tuple[str, str], list[int]] = defaultdict(list)
    for row in distinct(rows):
        if row[5] and lo <= int(row[5]) <= hi:
            # yyyy-MM-dd HH:mm:ss; windows are aligned to the epoch, hence
            # to the hour as long as they divide it.
            minute = int(row[4][14:16])
            start = f"{row[4][:14]}{minute - minute % minutes:02d}"
            windows[(row[0], start)].append(int(row[5]))
    needed = manifest["rules"]["frozen_min_readings"]
    return [k for k, v in windows.items() if len(v) >= needed and len(set(v)) == 1]


def test_frozen_episodes_are_exactly_the_flagged_windows(run):
    out, manifest = run
    faults = manifest["faults"]
    _, rows = read_rows(out / "vitals.csv")
    flagged = frozen_windows(rows, manifest)
    assert len(flagged) == faults["frozen_windows"] > 0
    # One episode per user-day at most, and every episode is detectable.
    assert len({(user, start[:10]) for user, start in flagged}) == faults["frozen_episodes"]


def test_frozen_episodes_hold_a_value_for_ten_or_more_readings(run):
    out, manifest = run
    _, rows = read_rows(out / "vitals.csv")
    runs = [
        len(list(group))
        for (_, value), group in groupby(distinct(rows), key=lambda r: (r[0], r[5]))
        if value
    ]
    long_runs = [n for n in runs if n >= gen_config.FROZEN_READINGS[0]]
    assert len(long_runs) == manifest["faults"]["frozen_episodes"]
    assert sum(long_runs) >= manifest["faults"]["frozen_readings"]
    assert all(n <= gen_config.FROZEN_READINGS[1] + 2 for n in long_runs)


def test_subscription_faults_match_manifest(run):
    out, manifest = run
    faults = manifest["faults"]
    tiers = subscription_tiers()
    _, rows = read_rows(out / "subscriptions.csv")
    assert {row[1] for row in rows} <= set(tiers)
    for row in rows:
        date.fromisoformat(row[2])
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", row[2])
    unique = distinct(rows)
    assert len(rows) - len(unique) == faults["duplicate_subscription_rows"] > 0
    history: dict[str, list[list[str]]] = defaultdict(list)
    for row in unique:
        history[row[0]].append(row)
    upgraded = [u for u, plans in history.items() if len(plans) > 1]
    assert len(upgraded) == faults["upgraded_users"] > 0
    for user in upgraded:
        ranks = [tiers.index(p[1]) for p in history[user]]
        starts = [p[2] for p in history[user]]
        assert ranks == sorted(set(ranks)) and starts == sorted(set(starts))
    _, vitals = read_rows(out / "vitals.csv")
    without = {row[0] for row in vitals} - set(history)
    assert len(without) == faults["users_without_subscription"] > 0


def test_some_upgrades_fall_inside_the_generated_days(tmp_path):
    config = small_config(tmp_path, users=200, upgrade_rate=0.5)
    manifest = gen_run.generate(config, progress=False).manifest
    _, rows = read_rows(tmp_path / "subscriptions.csv")
    window = {"2026-11-01", "2026-11-02"}
    assert any(row[2] in window for row in rows)
    assert manifest["faults"]["upgraded_users"] > 0


def test_zero_rates_inject_nothing(tmp_path):
    rates = {name: 0.0 for name in gen_config.RATE_FIELDS}
    config = small_config(tmp_path, users=5, days=1, **rates)
    manifest = gen_run.generate(config, progress=False).manifest
    faults = manifest["faults"]
    assert all(faults[k] == 0 for k in faults), faults
    _, rows = read_rows(tmp_path / "vitals.csv")
    assert not frozen_windows(rows, manifest)


def hand_made(values: list[int | None], frozen: list[bool], cells: list[int]) -> gen_readings.Readings:
    n = len(values)
    return gen_readings.Readings(
        grid_rows=1,
        cell=np.array(cells, dtype=np.int64),
        user=np.zeros(n, dtype=np.int32),
        day=np.zeros(n, dtype=np.int32),
        heart_rate=np.array([v or 0 for v in values], dtype=np.int16),
        is_null=np.array([v is None for v in values]),
        frozen=np.array(frozen),
        shielded=np.zeros(n, dtype=bool),
        injected=np.zeros(n, dtype=bool),
    )


def test_only_injected_episodes_stay_constant():
    """Natural readings that happen to be equal within a check window would
    look frozen downstream; they are nudged, injected episodes are not."""
    rules = gen_config.load_rules()
    values = [70, 70, 70, 80, 80, 80, 90, 90, 90, 90, 60, None, 60]
    frozen = [False] * 3 + [True] * 3 + [True, True, False, False] + [False] * 3
    cells = [0, 1, 2, 10, 11, 12, 20, 21, 22, 23, 30, 31, 32]
    readings = hand_made(values, frozen, cells)
    assert gen_readings.break_natural_plateaus(readings, rules) == 3
    hr = readings.heart_rate.tolist()
    assert len(set(hr[0:3])) == 2  # natural plateau broken
    assert hr[3:6] == [80, 80, 80]  # the episode kept
    assert len(set(hr[6:10])) == 2 and hr[6:8] == [90, 90]  # natural neighbour nudged
    assert hr[10] != hr[12]  # a null in between does not hide a plateau
    assert gen_readings.count_frozen_windows(readings, rules) == 1


def test_failed_run_leaves_no_partial_files(tmp_path, monkeypatch):
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(gen_run, "readings_table", broken)
    with pytest.raises(RuntimeError):
        gen_run.generate(small_config(tmp_path, users=3, days=1), progress=False)
    assert list(tmp_path.iterdir()) == []


# --- split by day and the output directory -----------------------------------


def test_split_day_writes_one_file_per_day_with_the_same_rows(run, tmp_path):
    out, manifest = run
    gen_run.generate(small_config(tmp_path, split="day"), progress=False)
    names = sorted(p.name for p in VITALS.files(tmp_path))
    assert names == ["vitals_2026-11-01.csv", "vitals_2026-11-02.csv"]
    split_rows: list[list[str]] = []
    for name in names:
        header, rows = read_rows(tmp_path / name)
        assert header == VITALS.header
        assert {row[4][:10] for row in rows} == {name[7:17]}
        split_rows += rows
    _, whole = read_rows(out / "vitals.csv")
    assert sorted(split_rows) == sorted(whole)
    split_manifest = json.loads((tmp_path / gen_config.MANIFEST_NAME).read_text(encoding="utf-8"))
    assert split_manifest["faults"] == manifest["faults"]


def test_rerun_replaces_its_own_stale_files_only(tmp_path):
    gen_run.generate(small_config(tmp_path, users=3, days=2, split="day"), progress=False)
    gen_run.generate(small_config(tmp_path, users=3, days=2), progress=False)
    assert [p.name for p in VITALS.files(tmp_path)] == ["vitals.csv"]
    (tmp_path / "vitals_extra.csv").write_text("not ours\n", encoding="utf-8")
    with pytest.raises(UserError, match="vitals_extra.csv"):
        gen_run.generate(small_config(tmp_path, users=3, days=2, split="day"), progress=False)
    assert (tmp_path / "vitals_extra.csv").exists()


# --- validation and the CLI --------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [{"users": 0}, {"days": 0}, {"seed": -1}, {"null_rate": 1.5}, {"cities": 0},
     {"cities": len(gen_config.CITIES) + 1}, {"split": "hour"}, {"consent_change_rate": 1.5},
     {"bad_consent_rate": -0.1}],
)
def test_bad_config_is_a_user_error(tmp_path, overrides):
    with pytest.raises(UserError):
        gen_run.generate(small_config(tmp_path, **overrides), progress=False)


@pytest.mark.parametrize(
    "args",
    [["--users", "0"], ["--split", "week"], ["--start-date", "2026-13-01"], ["--null-rate", "2"]],
)
def test_cli_rejects_bad_arguments_in_one_line(tmp_path, args):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path), *args],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 2
    ours = [line for line in proc.stderr.splitlines() if line.startswith("generate_data.py")]
    assert len(ours) == 1 and ours[0].startswith("generate_data.py: error:")
    assert "usage:" not in proc.stderr
    assert not any(tmp_path.iterdir())


def test_cli_writes_files_and_a_summary(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--users", "3", "--days", "1",
         "--seed", "1", "--split", "day", "--cities", "2"],
        capture_output=True, text=True, check=True,
    )
    assert "rows/s" in proc.stdout
    manifest = json.loads((tmp_path / gen_config.MANIFEST_NAME).read_text(encoding="utf-8"))
    assert set(manifest["files"]) == {"subscriptions.csv", "vitals_2026-11-01.csv", "users.csv",
                                      "events_2026-11-01.jsonl", "consent_events.csv"}
    assert len(manifest["cities"]) == 2
    help_text = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True
    ).stdout
    for flag in ("--out", "--users", "--days", "--seed", "--start-date", "--split",
                 "--frozen-rate", "--null-rate", "--out-of-range-rate", "--duplicate-rate",
                 "--duplicate-subscription-rate", "--upgrade-rate", "--no-subscription-rate",
                 "--cities", "--quiet", "--events-per-user-day", "--consent-share",
                 "--bad-user-rate", "--duplicate-user-rate", "--bad-event-rate",
                 "--duplicate-event-rate", "--consent-change-rate", "--bad-consent-rate"):
        assert flag in help_text



# --- users.csv -----------------------------------------------------------------


def users_by_id(out: Path) -> tuple[list[str], dict[str, list[dict[str, str]]]]:
    header, rows = read_rows(out / "users.csv")
    by_id: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_id[row[0]].append(dict(zip(header, row)))
    return header, by_id


def test_users_header_and_same_people_as_vitals(run):
    out, manifest = run
    header, by_id = users_by_id(out)
    assert header == USERS.header
    assert (out / "users.csv").read_bytes().split(b"\n", 1)[0].decode() == ",".join(USERS.header)
    _, vitals = read_rows(out / "vitals.csv")
    people = {row[0]: (row[1], row[2]) for row in vitals}
    assert set(by_id) == set(people) == set(gen_population.user_id_list(24))
    for user_id, versions in by_id.items():
        for u in versions:
            assert (u["full_name"], u["city"]) == people[user_id]
    assert manifest["files"]["users.csv"] == sum(len(v) for v in by_id.values())


def test_user_attributes_are_consistent(run):
    out, manifest = run
    cfg = small_config(out)
    pop, pool = gen_population.build_population(cfg)
    country_of_city = {c.name: c.locale.split("_")[1] for c in pool}
    _, by_id = users_by_id(out)
    start = datetime(2026, 11, 1)
    for i, user_id in enumerate(gen_population.user_id_list(24)):
        u = by_id[user_id][0]
        assert u["country"] == country_of_city[u["city"]]
        assert u["gender"] in ("non_binary", "female" if pop.names.female[i] else "male")
        assert u["account_status"] in ("active", "suspended", "closed")
        assert u["consent_analytics"] in ("true", "false") or manifest["faults"]["bad_user_rows"]
        assert re.fullmatch(r"-?\d+\.\d{2}", u["lifetime_value_eur"])
        assert u["email"].isascii()
        assert re.fullmatch(r"[a-z0-9._]+@[a-z0-9-]+(\.[a-z0-9-]+)+", u["email"]) or not u["email"]
        assert u["phone"].startswith("+")
        created = datetime.strptime(u["created_at"], TS_FORMAT)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", u["date_of_birth"]):
            try:
                born = datetime.strptime(u["date_of_birth"], "%Y-%m-%d")
            except ValueError:
                continue  # an injected unparseable date
            if born.year < 2000:  # not an injected implausible one
                assert 18 <= (start - born).days / 365.25 <= 90.1
        if u["last_login_at"]:
            assert datetime.strptime(u["last_login_at"], TS_FORMAT) >= created
    emails = [v[0]["email"] for v in by_id.values() if v[0]["email"]]
    assert len(set(emails)) == len(emails)


def test_user_tier_and_signup_follow_subscriptions(run):
    out, _ = run
    _, by_id = users_by_id(out)
    _, subs = read_rows(out / "subscriptions.csv")
    latest: dict[str, str] = {}
    first_start: dict[str, str] = {}
    for user_id, tier, start in subs:  # sorted by user and start date
        latest[user_id] = tier
        first_start.setdefault(user_id, start)
    for user_id, versions in by_id.items():
        u = versions[0]
        assert u["subscription_tier"] == latest.get(user_id, "")
        if user_id in first_start and STAMP.fullmatch(u["created_at"]):
            assert u["created_at"][:10] < first_start[user_id]
    assert any(u[0]["subscription_tier"] == "" for u in by_id.values())


def _luhn_ok(digits: str) -> bool:
    total = 0
    for k, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if k % 2 else 1)
        total += d // 10 + d % 10
    return total % 10 == 0


def _valid_national_id(country: str, value: str) -> bool:
    """Independent re-implementations of the check rules."""
    if country == "FR":
        return bool(re.fullmatch(r"[12]\d{14}", value)) and 97 - int(value[:13]) % 97 == int(value[13:])
    if country == "DE":
        if not re.fullmatch(r"[1-9]\d{10}", value):
            return False
        product = 10
        for ch in value[:10]:
            total = (int(ch) + product) % 10 or 10
            product = total * 2 % 11
        return (11 - product) % 10 == int(value[10]) and len(set(value[:10])) == 9
    if country == "CH":
        if not re.fullmatch(r"756\.\d{4}\.\d{4}\.\d{2}", value):
            return False
        digits = value.replace(".", "")
        total = sum(int(d) * (3 if k % 2 else 1) for k, d in enumerate(digits[:12]))
        return (10 - total % 10) % 10 == int(digits[12])
    if country == "ES":
        return bool(re.fullmatch(r"\d{8}[A-Z]", value)) and \
            "TRWAGMYFPDXBNJZSQVHLCKE"[int(value[:8]) % 23] == value[8]
    if country == "NL":
        return bool(re.fullmatch(r"\d{9}", value)) and (
            sum(int(d) * w for d, w in zip(value, range(9, 1, -1))) - int(value[8])) % 11 == 0
    if country == "PL":
        weights = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3]
        return bool(re.fullmatch(r"\d{11}", value)) and \
            (10 - sum(int(d) * w for d, w in zip(value, weights)) % 10) % 10 == int(value[10])
    if country == "SE":
        return bool(re.fullmatch(r"\d{6}-\d{4}", value)) and _luhn_ok(value.replace("-", ""))
    if country == "IT":
        return bool(re.fullmatch(r"[A-Z]{6}\d{2}[ABCDEHLMPRST]\d{2}[A-Z]\d{3}[A-Z]", value))
    if country == "CZ":
        return bool(re.fullmatch(r"\d{6}/\d{4}", value)) and int(value.replace("/", "")) % 11 == 0
    if country == "BE":
        m = re.fullmatch(r"(\d{2})\.(\d{2})\.(\d{2})-(\d{3})\.(\d{2})", value)
        if not m:
            return False
        number = int("".join(m.groups()[:4]))
        return int(m.group(5)) in (97 - number % 97, 97 - (2_000_000_000 + number) % 97)
    if country == "FI":
        return bool(re.fullmatch(r"\d{6}[-A]\d{3}[0-9A-Y]", value)) and \
            "0123456789ABCDEFHJKLMNPRSTUVWXY"[int(value[:6] + value[7:10]) % 31] == value[10]
    if country == "IE":
        if not re.fullmatch(r"\d{7}[A-W]", value):
            return False
        r = sum(int(d) * w for d, w in zip(value, range(8, 1, -1))) % 23
        return value[7] == ("W" if r == 0 else chr(64 + r))
    if country == "AT":
        return bool(re.fullmatch(r"\d{4} \d{6}", value))
    if country == "PT":
        return bool(re.fullmatch(r"[12]\d{8}", value))
    if country == "DK":
        return bool(re.fullmatch(r"\d{6}-\d{4}", value))
    return False


def test_national_ids_have_the_country_format_and_check_digit(tmp_path):
    config = small_config(tmp_path, users=600, days=1, cities=len(gen_config.CITIES), bad_user_rate=0.0,
                          duplicate_user_rate=0.0, events_per_user_day=0.0)
    gen_run.generate(config, progress=False)
    _, by_id = users_by_id(tmp_path)
    seen: dict[str, int] = defaultdict(int)
    for versions in by_id.values():
        u = versions[0]
        assert _valid_national_id(u["country"], u["national_id"]), (u["country"], u["national_id"])
        seen[u["country"]] += 1
    assert len(seen) >= 12, seen
    # Sex encoded where the id carries it: NIR first digit, PESEL tenth digit.
    for versions in by_id.values():
        u = versions[0]
        if u["country"] == "FR" and u["gender"] != "non_binary":
            assert u["national_id"][0] == ("2" if u["gender"] == "female" else "1")
        if u["country"] == "PL" and u["gender"] != "non_binary":
            assert int(u["national_id"][9]) % 2 == (0 if u["gender"] == "female" else 1)
    # Addresses: IPv4 and some IPv6, some of them compressed.
    ips = [v[0]["ip_address"] for v in by_id.values()]
    import ipaddress

    parsed = [ipaddress.ip_address(ip) for ip in ips]
    v6 = [ip for ip, p in zip(ips, parsed) if p.version == 6]
    assert 0.08 < len(v6) / len(ips) < 0.25 and any("::" in ip for ip in v6)
    consent = [v[0]["consent_analytics"] == "true" for v in by_id.values()]
    assert 0.78 < sum(consent) / len(consent) < 0.92


def test_consent_share_flag(tmp_path):
    gen_run.generate(small_config(tmp_path, users=200, days=1, consent_share=0.2, bad_user_rate=0.0),
                 progress=False)
    _, by_id = users_by_id(tmp_path)
    share = sum(v[0]["consent_analytics"] == "true" for v in by_id.values()) / len(by_id)
    assert 0.12 < share < 0.3


def test_user_faults_match_manifest(tmp_path):
    config = small_config(tmp_path, users=400, days=1, bad_user_rate=0.2, duplicate_user_rate=0.05,
                          events_per_user_day=1.0)
    manifest = gen_run.generate(config, progress=False).manifest
    _, rows = read_rows(tmp_path / "users.csv")
    ids = [r[0] for r in rows]
    assert len(ids) - len(set(ids)) == manifest["faults"]["duplicate_user_rows"] > 0
    kinds = manifest["fault_kinds"]["users"]
    assert sum(kinds.values()) == manifest["faults"]["bad_user_rows"] > 0
    assert all(v > 0 for v in kinds.values()), kinds
    header = USERS.header
    consent = header.index("consent_analytics")
    assert sum(r[consent] not in ("true", "false") for r in rows) == kinds["bad_consent_analytics"]
    email = header.index("email")
    assert sum(r[email] == "" for r in rows) == kinds["missing_email"]
    assert manifest["counts"]["user_rows"] == len(rows) == 400 + manifest["faults"]["duplicate_user_rows"]


# --- events --------------------------------------------------------------------


def read_events(out: Path) -> tuple[list[str], list[dict | None]]:
    lines: list[str] = []
    for path in EVENTS.files(out):
        lines += path.read_text(encoding="utf-8").splitlines()
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            parsed.append(None)
    return lines, parsed


@pytest.fixture(scope="module")
def events_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("events")
    config = small_config(out, users=150, days=2, bad_event_rate=0.03, duplicate_event_rate=0.02,
                          events_per_user_day=20.0)
    return out, gen_run.generate(config, progress=False).manifest


def test_events_are_json_lines_of_known_users(events_run):
    out, manifest = events_run
    lines, parsed = read_events(out)
    assert len(lines) == manifest["counts"]["event_lines"] == sum(
        v for k, v in manifest["files"].items() if k.startswith("events"))
    kinds = manifest["fault_kinds"]["events"]
    assert parsed.count(None) == kinds["malformed_json"] > 0
    _, users = users_by_id(out)
    fields = set(EVENTS.header)
    start, end = datetime(2026, 11, 1), datetime(2026, 11, 3)
    ok = [e for e in parsed if e is not None]
    for e in ok:
        assert set(e) <= fields
        if "user_id" in e:
            assert e["user_id"] in users
        if STAMP.fullmatch(e["event_ts"]):
            assert start <= datetime.strptime(e["event_ts"], TS_FORMAT) < end
        assert e["device_type"] in ("mobile", "desktop", "tablet", "watch")
        assert re.fullmatch(r"[0-9a-f]{16}", e["event_id"]) and re.fullmatch(r"[0-9a-f]{16}", e["session_id"])
    assert sum("user_id" not in e for e in ok) == kinds["missing_user_id"]
    assert sum(not STAMP.fullmatch(e["event_ts"]) for e in ok) == kinds["bad_event_ts"]
    assert sum(e["event_type"] == "pageview" for e in ok) == kinds["unknown_event_type"]
    assert sum(("amount_eur" in e) != (e["event_type"] == "purchase") for e in ok) == (
        kinds["amount_on_non_purchase"] + kinds["missing_amount_on_purchase"])


def test_event_ids_unique_but_for_injected_duplicates(events_run):
    out, manifest = events_run
    lines, parsed = read_events(out)
    ids = [e["event_id"] for e in parsed if e is not None]
    assert len(ids) - len(set(ids)) == manifest["faults"]["duplicate_event_lines"] > 0
    # A duplicate is the very same line right after its original.
    repeats = sum(1 for a, b in zip(lines, lines[1:]) if a == b)
    assert repeats == manifest["faults"]["duplicate_event_lines"]
    assert manifest["counts"]["distinct_events"] == len(lines) - repeats


def test_event_types_follow_the_weights_and_sessions_group_a_user(events_run):
    out, manifest = events_run
    _, parsed = read_events(out)
    events = [e for e in parsed if e is not None and STAMP.fullmatch(e["event_ts"])]
    total = len(events)
    assert total > 4000
    counts = {t: sum(e["event_type"] == t for e in events) for t in ("page_view", "click", "search", "purchase")}
    assert abs(counts["page_view"] / total - 0.45) < 0.04
    assert abs(counts["click"] / total - 0.20) < 0.03
    assert abs(counts["search"] / total - 0.10) < 0.03
    assert abs(counts["purchase"] / total - 0.03) < 0.015
    sessions: dict[str, list[dict]] = defaultdict(list)
    for e in events:
        sessions[e["session_id"]].append(e)
    assert 2 < total / len(sessions) < 20
    for members in sessions.values():
        assert len({e.get("user_id") for e in members} - {None}) == 1
        stamps = sorted(datetime.strptime(e["event_ts"], TS_FORMAT) for e in members)
        assert stamps[-1] - stamps[0] < timedelta(hours=6)
        assert len({e["device_type"] for e in members}) == 1
    signups = [e["user_id"] for e in events if e["event_type"] == "signup" and "user_id" in e]
    assert len(signups) == len(set(signups))
    for e in events:
        if e["event_type"] == "purchase" and "amount_eur" in e:
            assert isinstance(e["amount_eur"], (int, float)) and e["amount_eur"] > 0


def test_signups_and_last_login_match_users(events_run):
    out, _ = events_run
    _, parsed = read_events(out)
    _, users = users_by_id(out)
    start = "2026-11-01"
    joined_now = {u: v[0]["created_at"] for u, v in users.items()
                  if v[0]["created_at"] >= start and v[0]["account_status"] != "closed"}
    events = [e for e in parsed if e is not None and "user_id" in e and STAMP.fullmatch(e["event_ts"])]
    signup = {e["user_id"]: e["event_ts"] for e in events if e["event_type"] == "signup"}
    assert signup == joined_now
    for e in events:
        created = users[e["user_id"]][0]["created_at"]
        if STAMP.fullmatch(created):
            assert e["event_ts"] >= created
    closed = {u for u, v in users.items() if v[0]["account_status"] == "closed"}
    assert not {e["user_id"] for e in events} & closed


def test_events_per_user_day_flag_scales_volume(tmp_path):
    small = gen_run.generate(small_config(tmp_path / "a", users=100, days=1, events_per_user_day=5.0),
                         progress=False).manifest
    large = gen_run.generate(small_config(tmp_path / "b", users=100, days=1, events_per_user_day=40.0),
                         progress=False).manifest
    assert 5 < large["counts"]["distinct_events"] / small["counts"]["distinct_events"] < 12


def test_split_day_writes_one_event_file_per_day(run, tmp_path):
    out, manifest = run
    gen_run.generate(small_config(tmp_path, split="day"), progress=False)
    names = sorted(p.name for p in EVENTS.files(tmp_path))
    assert names == ["events_2026-11-01.jsonl", "events_2026-11-02.jsonl"]
    split_lines = []
    for name in names:
        for line in (tmp_path / name).read_text(encoding="utf-8").splitlines():
            split_lines.append(line)
            m = re.search(r'"event_ts":"(\d{4}-\d{2}-\d{2})', line)
            if m:
                assert m.group(1) == name[7:17]
    whole = (out / "events.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(split_lines) == sorted(whole)


# --- consent_events.csv ----------------------------------------------------------


def consent_problem(row: list[str]) -> str | None:
    """What the loader would quarantine a line for (exact duplicates aside)."""
    if len(row) != len(CONSENT_EVENTS.header):
        return "wrong_field_count"
    user_id, consent_type, action, ts = row
    if not user_id:
        return "missing_user_id"
    if consent_type != "analytics":
        return "unknown_consent_type"
    if action not in ("grant", "withdraw"):
        return "unknown_action"
    try:
        datetime.strptime(ts, TS_FORMAT)
    except ValueError:
        return "bad_event_ts"
    return None if STAMP.fullmatch(ts) else "bad_event_ts"


@pytest.fixture(scope="module")
def consent_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("consent")
    config = small_config(out, users=300, days=3, consent_change_rate=0.3, bad_consent_rate=0.15,
                          bad_user_rate=0.0, duplicate_user_rate=0.0, events_per_user_day=1.0)
    return out, gen_run.generate(config, progress=False).manifest


def test_consent_events_are_dated_changes_of_known_users(consent_run):
    out, manifest = consent_run
    assert (out / "consent_events.csv").read_bytes().split(b"\n", 1)[0].decode() == ",".join(
        CONSENT_EVENTS.header)
    assert CONSENT_EVENTS.files(out) == [out / "consent_events.csv"]
    _, rows = read_rows(out / "consent_events.csv")
    _, users = users_by_id(out)
    good = [r for r in rows if consent_problem(r) is None]
    events = [r for r in distinct(good)]
    start = datetime(2026, 11, 1)
    by_user: dict[str, list[list[str]]] = defaultdict(list)
    for user_id, _, action, ts in events:
        by_user[user_id].append([action, ts])
        when = datetime.strptime(ts, TS_FORMAT)
        assert start <= when < start + timedelta(days=3)
        assert when > datetime.strptime(users[user_id][0]["created_at"], TS_FORMAT)
    # The first change flips users.csv's consent_analytics, a second one flips
    # it back; a faulty line may hide the first.
    hidden_first = 0
    for user_id, changes in by_user.items():
        changes.sort(key=lambda c: c[1])
        consent = users[user_id][0]["consent_analytics"] == "true"
        expected = ["withdraw", "grant"] if consent else ["grant", "withdraw"]
        actions = [action for action, _ in changes]
        assert len(changes) <= 2
        if actions != expected[: len(actions)]:
            assert actions == expected[1:]
            hidden_first += 1
        if len(changes) == 2:
            assert changes[1][1] > changes[0][1]
    assert hidden_first <= manifest["faults"]["bad_consent_lines"]
    counts = manifest["counts"]
    assert 0.2 < counts["users_changing_consent"] / 300 < 0.4
    assert any(len(c) == 2 for c in by_user.values())  # some change back
    assert {c[0][0] for c in by_user.values()} == {"grant", "withdraw"}
    assert counts["consent_event_lines"] == len(rows) == manifest["files"]["consent_events.csv"]
    bad = manifest["faults"]["bad_consent_lines"]
    assert counts["users_changing_consent"] - bad <= len(by_user) <= counts["users_changing_consent"]


def test_consent_faults_match_manifest(consent_run):
    out, manifest = consent_run
    _, rows = read_rows(out / "consent_events.csv")
    kinds = manifest["fault_kinds"]["consent_events"]
    assert set(kinds) == {"unknown_action", "unknown_consent_type", "bad_event_ts",
                          "missing_user_id", "wrong_field_count", "duplicate_line"}
    found: dict[str, int] = defaultdict(int)
    for row in rows:
        problem = consent_problem(row)
        if problem:
            found[problem] += 1
    found["duplicate_line"] = len(rows) - len(distinct(rows)) - sum(
        n - 1 for n in _repeats([r for r in rows if consent_problem(r)]).values())
    assert {k: found.get(k, 0) for k in kinds} == kinds
    assert sum(kinds.values()) == manifest["faults"]["bad_consent_lines"] > 0
    assert manifest["counts"]["consent_changes"] == len(rows) - kinds["duplicate_line"]


def _repeats(rows: list[list[str]]) -> dict[tuple[str, ...], int]:
    seen: dict[tuple[str, ...], int] = defaultdict(int)
    for row in rows:
        seen[tuple(row)] += 1
    return seen


def test_consent_events_leave_the_other_files_unchanged(tmp_path):
    gen_run.generate(small_config(tmp_path / "none", consent_change_rate=0.0, bad_consent_rate=0.0),
                 progress=False)
    gen_run.generate(small_config(tmp_path / "many", consent_change_rate=0.9, bad_consent_rate=0.5),
                 progress=False)
    none, many = file_bytes(tmp_path / "none"), file_bytes(tmp_path / "many")
    assert none.pop("consent_events.csv") == b"user_id,consent_type,action,event_ts\n"
    assert many.pop("consent_events.csv").count(b"\n") > 10
    none.pop(gen_config.MANIFEST_NAME), many.pop(gen_config.MANIFEST_NAME)
    assert none == many and "users.csv" in none
