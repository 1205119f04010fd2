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

from sflux import generator as gen
from sflux.contract import SUBSCRIPTIONS, VITALS, subscription_tiers
from sflux.errors import UserError

TS_FORMAT = "%Y-%m-%d %H:%M:%S"  # the contract's yyyy-MM-dd HH:mm:ss
STAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "generate_data.py"


def small_config(out: Path, **overrides: object) -> gen.GeneratorConfig:
    base = gen.GeneratorConfig(
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
    result = gen.generate(small_config(out), progress=False)
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
    gen.generate(small_config(tmp_path / "again"), progress=False)
    assert file_bytes(tmp_path / "again") == file_bytes(out)


def test_other_seed_gives_other_data(run, tmp_path):
    out, _ = run
    gen.generate(small_config(tmp_path / "other", seed=8), progress=False)
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
    assert gen.user_id_list(3) == ["user_000001", "user_000002", "user_000003"]
    assert gen.user_id_width(999_999) == 6
    assert gen.user_id_width(1_000_000) == 7


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
            assert 1 <= position - seen[row] <= gen.DUPLICATE_MAX_SHIFT + 2
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
    long_runs = [n for n in runs if n >= gen.FROZEN_READINGS[0]]
    assert len(long_runs) == manifest["faults"]["frozen_episodes"]
    assert sum(long_runs) >= manifest["faults"]["frozen_readings"]
    assert all(n <= gen.FROZEN_READINGS[1] + 2 for n in long_runs)


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
    manifest = gen.generate(config, progress=False).manifest
    _, rows = read_rows(tmp_path / "subscriptions.csv")
    window = {"2026-11-01", "2026-11-02"}
    assert any(row[2] in window for row in rows)
    assert manifest["faults"]["upgraded_users"] > 0


def test_zero_rates_inject_nothing(tmp_path):
    rates = {name: 0.0 for name in gen.RATE_FIELDS}
    config = small_config(tmp_path, users=5, days=1, **rates)
    manifest = gen.generate(config, progress=False).manifest
    faults = manifest["faults"]
    assert all(faults[k] == 0 for k in faults), faults
    _, rows = read_rows(tmp_path / "vitals.csv")
    assert not frozen_windows(rows, manifest)


def hand_made(values: list[int | None], frozen: list[bool], cells: list[int]) -> gen.Readings:
    n = len(values)
    return gen.Readings(
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
    rules = gen.load_rules()
    values = [70, 70, 70, 80, 80, 80, 90, 90, 90, 90, 60, None, 60]
    frozen = [False] * 3 + [True] * 3 + [True, True, False, False] + [False] * 3
    cells = [0, 1, 2, 10, 11, 12, 20, 21, 22, 23, 30, 31, 32]
    readings = hand_made(values, frozen, cells)
    assert gen.break_natural_plateaus(readings, rules) == 3
    hr = readings.heart_rate.tolist()
    assert len(set(hr[0:3])) == 2  # natural plateau broken
    assert hr[3:6] == [80, 80, 80]  # the episode kept
    assert len(set(hr[6:10])) == 2 and hr[6:8] == [90, 90]  # natural neighbour nudged
    assert hr[10] != hr[12]  # a null in between does not hide a plateau
    assert gen.count_frozen_windows(readings, rules) == 1


def test_failed_run_leaves_no_partial_files(tmp_path, monkeypatch):
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(gen, "readings_table", broken)
    with pytest.raises(RuntimeError):
        gen.generate(small_config(tmp_path, users=3, days=1), progress=False)
    assert list(tmp_path.iterdir()) == []


# --- split by day and the output directory -----------------------------------


def test_split_day_writes_one_file_per_day_with_the_same_rows(run, tmp_path):
    out, manifest = run
    gen.generate(small_config(tmp_path, split="day"), progress=False)
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
    split_manifest = json.loads((tmp_path / gen.MANIFEST_NAME).read_text(encoding="utf-8"))
    assert split_manifest["faults"] == manifest["faults"]


def test_rerun_replaces_its_own_stale_files_only(tmp_path):
    gen.generate(small_config(tmp_path, users=3, days=2, split="day"), progress=False)
    gen.generate(small_config(tmp_path, users=3, days=2), progress=False)
    assert [p.name for p in VITALS.files(tmp_path)] == ["vitals.csv"]
    (tmp_path / "vitals_extra.csv").write_text("not ours\n", encoding="utf-8")
    with pytest.raises(UserError, match="vitals_extra.csv"):
        gen.generate(small_config(tmp_path, users=3, days=2, split="day"), progress=False)
    assert (tmp_path / "vitals_extra.csv").exists()


# --- validation and the CLI --------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [{"users": 0}, {"days": 0}, {"seed": -1}, {"null_rate": 1.5}, {"cities": 0},
     {"cities": len(gen.CITIES) + 1}, {"split": "hour"}],
)
def test_bad_config_is_a_user_error(tmp_path, overrides):
    with pytest.raises(UserError):
        gen.generate(small_config(tmp_path, **overrides), progress=False)


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
    manifest = json.loads((tmp_path / gen.MANIFEST_NAME).read_text(encoding="utf-8"))
    assert set(manifest["files"]) == {"subscriptions.csv", "vitals_2026-11-01.csv"}
    assert len(manifest["cities"]) == 2
    help_text = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True
    ).stdout
    for flag in ("--out", "--users", "--days", "--seed", "--start-date", "--split",
                 "--frozen-rate", "--null-rate", "--out-of-range-rate", "--duplicate-rate",
                 "--duplicate-subscription-rate", "--upgrade-rate", "--no-subscription-rate",
                 "--cities", "--quiet"):
        assert flag in help_text
