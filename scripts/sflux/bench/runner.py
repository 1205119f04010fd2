"""The benchmark runner behind scripts/benchmark.py (the protocol is in that
script's docstring): per size, generate and load landing data, run every
variant in a fresh process, check that their matrices agree, then time the
incremental dbt run; then the 30-day scenario; and write the targets of
issue 13 with bench/benchmark.json and bench/benchmark.png.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sflux.bench import jobs as bench_jobs
from sflux.bench.report import SCENARIO_DAYS, TOLERANCE, VARIANTS, log, report, report_loader
from sflux.core import paths
from sflux.privacy import keys

REPO = paths.REPO_ROOT
SCRIPTS = REPO / "scripts"
# Measured with the generator defaults: ~1,300 readings per user-day
# (about 1440 minutes x the share of the day a watch is worn).
READINGS_PER_USER_DAY = 1300
DBT_SELECT = ["--select", "+fct_city_stress_matrix"]


# ---------------------------------------------------------------- processes

def base_env(data_dir: Path, cores: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "SANTEFLUX_HOME": str(REPO),
        "SANTEFLUX_DATA_DIR": str(data_dir),
        "SANTEFLUX_SPARK_CORES": cores,
        "DBT_PROFILES_DIR": str(REPO / "profiles"),
        "DBT_TARGET_PATH": str(data_dir / "dbt_target"),
        "DBT_LOG_PATH": str(data_dir / "dbt_logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    })
    env.pop("SANTEFLUX_TARGET", None)  # always the embedded `local` target
    return env


def run(cmd: list[str], env: dict[str, str], log_file: Path) -> float:
    """Run a command, output to log_file; return its wall seconds."""
    started = time.perf_counter()
    with log_file.open("ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.run(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                              check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        tail = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-25:]
        raise SystemExit(f"benchmark.py: error: {cmd[1] if len(cmd) > 1 else cmd[0]} failed "
                         f"(exit {proc.returncode}); see {log_file}:\n  " + "\n  ".join(tail))
    return elapsed


def py() -> str:
    return sys.executable


def dbt() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def generate(landing: Path, users: int, days: int, seed: int, start: dt.date, env, log_file) -> float:
    return run([py(), str(SCRIPTS / "generate_data.py"), "--out", str(landing), "--users", str(users),
                "--days", str(days), "--seed", str(seed), "--start-date", start.isoformat(),
                "--split", "day", "--quiet"], env, log_file)


def load(landing: Path, env, log_file) -> float:
    return run([py(), str(SCRIPTS / "load_raw.py"), "--input", str(landing)], env, log_file)


def dbt_models(env, log_file, full_refresh: bool, extra: tuple[str, ...] = ()) -> tuple[float, float | None]:
    cmd = [dbt(), "run", *DBT_SELECT, "--project-dir", str(REPO), *extra]
    if full_refresh:
        cmd.append("--full-refresh")
    wall = run(cmd, env, log_file)
    inner = None
    results = Path(env["DBT_TARGET_PATH"]) / "run_results.json"
    if results.exists():
        inner = json.loads(results.read_text(encoding="utf-8")).get("elapsed_time")
    return wall, inner


def spark_job(variant: str, env, log_file, result: Path,
              landing: Path | None = None) -> tuple[float, dict[str, Any]]:
    extra = ["--landing", str(landing)] if landing is not None else []
    wall = run([py(), "-m", "sflux.bench.jobs", variant, "--result", str(result), *extra], env, log_file)
    return wall, json.loads(result.read_text(encoding="utf-8"))


def dbt_matrix(data_dir: Path) -> list[dict[str, Any]]:
    """analytics.fct_city_stress_matrix read straight from its parquet files
    (no JVM needed)."""
    import pyarrow.parquet as pq

    found = [p for p in (data_dir / "warehouse").rglob("fct_city_stress_matrix") if p.is_dir()]
    if len(found) != 1:
        raise SystemExit(f"benchmark.py: error: cannot find the fct_city_stress_matrix table under {data_dir}")
    return pq.read_table(found[0]).to_pylist()


# ---------------------------------------------------------------- checks

def normalise(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    cols = [c for _, c in bench_jobs.tier_columns()]
    return {r["city"]: {c: (None if r.get(c) is None else float(r[c])) for c in cols} for r in rows}


def matrix_diff(expected: dict, actual: dict) -> list[str]:
    problems = []
    for city in sorted(set(expected) | set(actual)):
        if city not in expected or city not in actual:
            problems.append(f"city {city!r} only in {'expected' if city in expected else 'actual'}")
            continue
        for col, want in expected[city].items():
            got = actual[city].get(col)
            if (want is None) != (got is None) or (
                    want is not None and not math.isclose(want, got, rel_tol=TOLERANCE, abs_tol=TOLERANCE)):
                problems.append(f"{city}.{col}: {want} != {got}")
    return problems


# ---------------------------------------------------------------- one size

def count_rows(landing: Path) -> int:
    manifest = json.loads((landing / "generation_manifest.json").read_text(encoding="utf-8"))
    counted = manifest.get("counts", {}).get("vitals_rows")
    if isinstance(counted, int):
        return counted
    total = 0
    for path in landing.glob("vitals*.csv"):
        with path.open("rb") as f:
            total += sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b"")) - 1
    return total


def prepare(name: str, title: str, users: int, days: int, start: dt.date, args, out: Path) -> dict[str, Any]:
    """A fresh work folder: generate ``days`` of landing files from ``start``
    and load them once (the loader timed, with the machine's load average)."""
    work = out / "work" / name
    shutil.rmtree(work, ignore_errors=True)
    landing, data_dir = work / "landing", work / "data"
    data_dir.mkdir(parents=True)
    log_file = out / f"bench_{name}.log"
    log_file.write_text("", encoding="utf-8")
    env = base_env(data_dir, args.cores)
    log(f"\n== {title}: {users} users x {days} days from {start} (seed {args.seed}); log {log_file}")
    gen_s = generate(landing, users, days, args.seed, start, env, log_file)
    rows = count_rows(landing)
    log(f"generated {rows:,} readings in {gen_s:.1f} s")
    load_before = os.getloadavg()[0]
    load_s = load(landing, env, log_file)
    # The machine may be shared: the 1-minute load average says how much.
    load_avg = (load_before, os.getloadavg()[0])
    log(f"loader (CSV -> raw parquet, load_raw.py incl. JVM start): {load_s:.1f} s "
        f"({rows / load_s:,.0f} rows/s; load average {load_avg[0]:.1f} before, {load_avg[1]:.1f} after)")
    return {"work": work, "landing": landing, "data_dir": data_dir, "log_file": log_file, "env": env,
            "rows": rows, "generate_seconds": gen_s, "load_seconds": load_s, "load_average": load_avg}


def dbt_seed(env, log_file) -> None:
    seed_s = run([dbt(), "seed", "--project-dir", str(REPO)], env, log_file)
    log(f"dbt seed (untimed setup): {seed_s:.1f} s")


def bench_size(size: int, args, out: Path) -> dict[str, Any]:
    users = max(10, round(size / (args.days * READINGS_PER_USER_DAY)))
    start = dt.date(2026, 11, 1)
    prep = prepare(str(size), f"size {size:,}", users, args.days, start, args, out)
    work, landing, data_dir = prep["work"], prep["landing"], prep["data_dir"]
    env, log_file, rows = prep["env"], prep["log_file"], prep["rows"]
    gen_s, load_s, load_avg = prep["generate_seconds"], prep["load_seconds"], prep["load_average"]
    if args.loader_only:
        if not args.keep_data:
            shutil.rmtree(work, ignore_errors=True)
        return {"size": size, "users": users, "days": args.days, "rows": rows,
                "generate_seconds": gen_s, "load_seconds": load_s, "load_average": load_avg}
    dbt_seed(env, log_file)

    letters = [x for x in VARIANTS if not (x == "c" and args.skip_udf)]
    timings: dict[str, dict[str, Any]] = {}
    matrices: dict[str, dict] = {}
    for attempt in range(args.repeat):
        for letter in letters:
            label, how = VARIANTS[letter]
            if how == "dbt":
                wall, inner = dbt_models(env, log_file, full_refresh=True)
                matrix = normalise(dbt_matrix(data_dir))
            else:
                wall, result = spark_job(how, env, log_file, work / f"result_{letter}.json",
                                         landing if how == "landing_csv" else None)
                inner, matrix = result["job_seconds"], normalise(result["matrix"])
            # Times are printed only after the matrices agree (see report()).
            log(f"  ({letter}) {label:<36} done (run {attempt + 1}/{args.repeat})")
            best = timings.get(letter)
            if best is None or wall < best["wall_seconds"]:
                timings[letter] = {"label": label, "wall_seconds": wall, "inner_seconds": inner,
                                   "rows_per_second": rows / wall}
            matrices[letter] = matrix

    # Results must agree before any time is reported.
    reference = matrices["d"]
    for letter in letters:
        check_same(reference, matrices[letter], f"({letter}) and (d) disagree at size {size}")
    filled = sum(v is not None for row in reference.values() for v in row.values())
    log(f"  check: {', '.join(f'({x})' for x in letters)} give the same matrix "
        f"({len(reference)} cities, {filled} unsuppressed cells, tolerance {TOLERANCE})")

    record: dict[str, Any] = {
        "size": size, "users": users, "days": args.days, "rows": rows,
        "generate_seconds": gen_s, "load_seconds": load_s, "load_average": load_avg, "variants": timings,
        "cells_unsuppressed": filled, "cities": len(reference),
    }
    if not args.skip_incremental:
        record["incremental"] = incremental_day(args, users, start, args.days, work, env, log_file)
    if not args.keep_data:
        shutil.rmtree(work, ignore_errors=True)
    return record


def check_same(expected: dict, actual: dict, what: str) -> None:
    problems = matrix_diff(expected, actual)
    if problems:
        raise SystemExit(f"benchmark.py: error: {what}: " + "; ".join(problems[:10]))


def incremental_day(args, users: int, start: dt.date, days: int, work: Path, env, log_file) -> dict[str, Any]:
    """One more day on top of the full build of (a): generate it (same users
    and seed), land it next to the subscriptions already loaded, load it and
    time the same dbt command without --full-refresh."""
    next_day = start + dt.timedelta(days=days)
    extra = work / "landing_next_day"
    gen_s = generate(extra, users, 1, args.seed, next_day, env, log_file)
    day_landing = work / "landing_day"
    day_landing.mkdir()
    for f in extra.glob("vitals*.csv"):
        shutil.copy2(f, day_landing / f.name)
    # The loader needs every dataset; re-landing the same subscriptions file
    # replaces its rows with identical ones.
    shutil.copy2(work / "landing" / "subscriptions.csv", day_landing / "subscriptions.csv")
    day_rows = count_rows(extra)
    load_s = load(day_landing, env, log_file)
    wall, inner = dbt_models(env, log_file, full_refresh=False)
    mode = incremental_mode(log_file)
    log(f"  incremental: +1 day ({next_day}, {day_rows:,} readings) generated in {gen_s:.1f} s, "
        f"loaded in {load_s:.1f} s; dbt run without --full-refresh {wall:.1f} s wall ({mode})")
    return {"date": next_day.isoformat(), "rows": day_rows, "generate_seconds": gen_s,
            "load_seconds": load_s, "wall_seconds": wall, "inner_seconds": inner, "mode": mode}


def bench_30_days(args, out: Path) -> dict[str, Any]:
    """The 30-day scenario (issue 13): (a) full build on SCENARIO_DAYS days of
    history (about ``args.scenario_size`` readings), then one more day
    generated and loaded, then (a) without --full-refresh. The matrix after
    the incremental run must equal (d)'s on all 31 days."""
    size, days = args.scenario_size, SCENARIO_DAYS
    users = max(10, round(size / (days * READINGS_PER_USER_DAY)))
    # Early enough that no generated consent event is dated in the future.
    start = dt.date(2026, 10, 1)
    prep = prepare(f"{days}days_{size}", f"{days}-day scenario, {size:,}", users, days, start, args, out)
    env, log_file, work = prep["env"], prep["log_file"], prep["work"]
    dbt_seed(env, log_file)
    full_s, full_inner = dbt_models(env, log_file, full_refresh=True)
    log(f"  (a) full build on {days} days: done")
    inc = incremental_day(args, users, start, days, work, env, log_file)
    after = normalise(dbt_matrix(prep["data_dir"]))
    # The floor of any incremental run: nothing new landed and no lookback,
    # so no reading date is rebuilt; what is left is the JVM, dbt's parse
    # (the --vars change forces a full one), the hooks, the date and consent
    # checks and the marts' rebuild from the member-day counts.
    floor_s, floor_inner = dbt_models(env, log_file, full_refresh=False,
                                      extra=("--vars", "{vitals_lookback_days: 0}"))
    log(f"  floor: the same run with nothing new and no lookback: {floor_s:.1f} s wall "
        f"({incremental_mode(log_file)})")
    _, result = spark_job("sql", env, log_file, work / "result_d_31_days.json")
    check_same(normalise(result["matrix"]), after,
               f"after the incremental day, (a) and (d) disagree ({days} + 1 days)")
    log(f"  check: after the incremental day, (a)'s matrix equals (d)'s on {days + 1} days")
    record = {
        "size": size, "users": users, "days": days, "start": start.isoformat(), "rows": prep["rows"],
        "generate_seconds": prep["generate_seconds"], "load_seconds": prep["load_seconds"],
        "load_average": prep["load_average"], "full_seconds": full_s, "full_inner_seconds": full_inner,
        "incremental": inc, "ratio": inc["wall_seconds"] / full_s,
        "floor_seconds": floor_s, "floor_inner_seconds": floor_inner,
        "check": f"matrix after the incremental run equals (d) on {days + 1} days",
    }
    if not args.keep_data:
        shutil.rmtree(work, ignore_errors=True)
    return record


def incremental_mode(log_file: Path) -> str:
    text = log_file.read_text(encoding="utf-8", errors="replace")
    last = text[text.rfind("$ "):]
    hits = [line.split("incremental ", 1)[1] for line in last.splitlines() if "incremental anonymized" in line
            or "incremental analytics" in line]
    if hits:
        return "incremental models: " + "; ".join(h.strip() for h in hits)
    return "no incremental model found: this was a full rebuild"


def run_benchmark(args: argparse.Namespace, argv: list[str]) -> int:
    """Run the benchmark the parsed arguments describe (or, with
    --report-only, redraw an earlier one)."""
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        previous = json.loads(args.report_only.read_text(encoding="utf-8"))
        report(previous["results"], out, previous["argv"], previous.get("machine"),
               previous.get("scenario_30d"))
        return 0
    # A caller's key is used as is; otherwise a random one for this run only.
    # It is passed through the environment and never printed.
    if len(keys.key_in_env()) < keys.MIN_KEY_LENGTH:
        os.environ[keys.KEY_ENV] = secrets.token_hex(32)
    records: list[dict[str, Any]] = []
    for size in sorted(args.sizes):
        records.append(bench_size(size, args, out))
        if args.loader_only:
            report_loader(records, out, argv)
        else:
            report(records, out, argv)  # partial results survive a later failure
    if not (args.loader_only or args.skip_scenario):
        report(records, out, argv, scenario=bench_30_days(args, out))
    return 0
