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
import platform
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sflux.bench import jobs as bench_jobs
from sflux.core import paths
from sflux.privacy import keys

REPO = paths.REPO_ROOT
SCRIPTS = REPO / "scripts"
# Measured with the generator defaults: ~1,300 readings per user-day
# (about 1440 minutes x the share of the day a watch is worn).
READINGS_PER_USER_DAY = 1300
TOLERANCE = 1e-9
DBT_SELECT = ["--select", "+fct_city_stress_matrix"]
VARIANTS = {  # letter -> (label, how)
    "a": ("dbt run +fct_city_stress_matrix", "dbt"),
    "b": ("PySpark DataFrame (notebook)", "dataframe"),
    "c": ("PySpark + Python UDFs (seed 001)", "python_udf"),
    "d": ("one Spark SQL query (lower bound)", "sql"),
    "e": ("PySpark reading the landing CSVs", "landing_csv"),
}
# The 30-day scenario (issue 13): a full build on this many days of history,
# then one more day, incremental.
SCENARIO_DAYS = 30


def log(msg: str) -> None:
    print(msg, flush=True)



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


def dbt_models(env, log_file, full_refresh: bool) -> tuple[float, float | None]:
    cmd = [dbt(), "run", *DBT_SELECT, "--project-dir", str(REPO)]
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
    _, result = spark_job("sql", env, log_file, work / "result_d_31_days.json")
    check_same(normalise(result["matrix"]), after,
               f"after the incremental day, (a) and (d) disagree ({days} + 1 days)")
    log(f"  check: after the incremental day, (a)'s matrix equals (d)'s on {days + 1} days")
    record = {
        "size": size, "users": users, "days": days, "start": start.isoformat(), "rows": prep["rows"],
        "generate_seconds": prep["generate_seconds"], "load_seconds": prep["load_seconds"],
        "load_average": prep["load_average"], "full_seconds": full_s, "full_inner_seconds": full_inner,
        "incremental": inc, "ratio": inc["wall_seconds"] / full_s,
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


# ---------------------------------------------------------------- report

def machine() -> dict[str, Any]:
    def cmd(args: list[str]) -> str:
        try:
            p = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
            return (p.stdout + p.stderr).strip()
        except OSError:
            return "n/a"

    import pyspark

    mem = cmd(["free", "-g"]).splitlines()
    return {
        "nproc": cmd(["nproc"]), "free_g": mem[1] if len(mem) > 1 else "n/a",
        "java": cmd(["java", "-version"]).splitlines()[0] if cmd(["java", "-version"]) else "n/a",
        "pyspark": pyspark.__version__, "python": platform.python_version(),
        "platform": platform.platform(),
    }


# Issue 13, section 1: the sizes its targets name, and the targets.
LARGE, MID = 20_000_000, 5_000_000
LOADER_ROWS_PER_SECOND = 250_000


def _at(records: list[dict[str, Any]], nominal: int) -> dict[str, Any] | None:
    """The record of a nominal size: that size if it was run, else for LARGE
    the largest size and for MID the largest size below it (so a smaller run
    still shows every target, at the sizes it had)."""
    if not records:
        return None
    exact = [r for r in records if r["size"] == nominal]
    if exact:
        return exact[0]
    largest = max(records, key=lambda r: r["size"])
    if nominal == LARGE:
        return largest
    smaller = [r for r in records if r["size"] < largest["size"]]
    return max(smaller, key=lambda r: r["size"]) if smaller else None


def _wall(record: dict[str, Any] | None, letter: str) -> float | None:
    if record is None or letter not in record.get("variants", {}):
        return None
    return record["variants"][letter]["wall_seconds"]


def _target(name: str, value: float | None, op: str, limit: float, where: str,
            unit: str = "x", why_na: str = "not run") -> dict[str, Any]:
    """One target: ``value`` compared with ``limit`` (op ">=" or "<=")."""
    def show(x: float) -> str:
        return f"{x:,.0f} rows/s" if unit == "rows/s" else f"{x:.2f}{unit}"

    met = None if value is None else (value >= limit if op == ">=" else value <= limit)
    return {"target": name, "goal": f"{'≥' if op == '>=' else '≤'} {show(limit)}",
            "measured": why_na if value is None else show(value), "value": value,
            "at": where, "met": met}


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return None if top is None or bottom is None else top / bottom


def targets(records: list[dict[str, Any]], scenario: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every target of issue 13, section 1, from the per-size records and the
    30-day scenario: goal, measured figure, met (True/False, None: not run)."""
    big, mid = _at(records, LARGE), _at(records, MID)

    def where(r: dict[str, Any] | None) -> str:
        return "n/a" if r is None else f"{r['rows']:,} readings"

    out = [
        _target("(a) full build faster than (b) at 20M: time(b)/time(a)",
                _ratio(_wall(big, "b"), _wall(big, "a")), ">=", 1.3, where(big)),
        _target("(a) at least as fast as (b) at 5M: time(b)/time(a)",
                _ratio(_wall(mid, "b"), _wall(mid, "a")), ">=", 1.0, where(mid),
                why_na="needs a second, smaller size"),
        _target("(a) vs (d) one query at 20M: time(a)/time(d)",
                _ratio(_wall(big, "a"), _wall(big, "d")), "<=", 2.0, where(big)),
        _target("(a) faster than (c) Python UDFs at 20M: time(c)/time(a)",
                _ratio(_wall(big, "c"), _wall(big, "a")), ">=", 2.0, where(big),
                why_na="(c) skipped"),
        _target("loader throughput at 20M (load_raw.py, JVM start included)",
                None if big is None else big["rows"] / big["load_seconds"], ">=",
                LOADER_ROWS_PER_SECOND, where(big), unit="rows/s"),
        _target("end to end at 20M: (load + (a)) / (e) notebook on the landing CSVs",
                None if _wall(big, "e") is None else (big["load_seconds"] + _wall(big, "a")) / _wall(big, "e"),
                "<=", 1.5, where(big), why_na="(e) not run"),
        _target(f"one new day on {SCENARIO_DAYS} days of history: incremental / full build of (a)",
                None if scenario is None else scenario["ratio"], "<=", 0.2,
                "n/a" if scenario is None else f"{scenario['rows']:,} readings + {scenario['incremental']['rows']:,}",
                why_na="scenario skipped"),
    ]
    growth, row_ratio = None, None
    if big is not None and mid is not None:
        growth, row_ratio = _ratio(_wall(big, "a"), _wall(mid, "a")), big["rows"] / mid["rows"]
    # 4.4x for 4x the rows: at most 1.1x the row ratio (linear or better).
    limit = 1.1 * (row_ratio or 4.0)
    out.append(_target(f"growth of (a) from 5M to 20M (rows x{row_ratio or 4.0:.2f}): time ratio",
                       growth, "<=", limit,
                       "n/a" if mid is None else f"{mid['rows']:,} -> {big['rows']:,} readings",
                       why_na="needs a second, smaller size"))
    return out


def verdict(met: bool | None) -> str:
    return "n/a" if met is None else ("MET" if met else "MISSED")


def report(records: list[dict[str, Any]], out: Path, argv: list[str],
           machine_info: dict[str, Any] | None = None, scenario: dict[str, Any] | None = None) -> None:
    log("\n== results (wall seconds of a fresh process each, JVM start included; inner s: "
        "dbt's elapsed_time, or the job's time after its Spark session started)")
    header = (f"{'size':>11} {'rows':>11} {'variant':<38} {'wall s':>8} {'rows/s':>10} {'vs (b)':>7} "
              f"{'vs (d)':>7} {'inner s':>8}")
    log(header)
    log("-" * len(header))
    for r in records:
        v = r["variants"]
        for letter, t in v.items():
            log(f"{r['size']:>11,} {r['rows']:>11,} ({letter}) {t['label']:<34} {t['wall_seconds']:>8.1f} "
                f"{t['rows_per_second']:>10,.0f} {t['wall_seconds'] / v['b']['wall_seconds']:>6.2f}x "
                f"{t['wall_seconds'] / v['d']['wall_seconds']:>6.2f}x "
                f"{t['inner_seconds'] if t['inner_seconds'] is not None else float('nan'):>8.1f}")
        log(f"{'':>11} {'':>11} loader CSV->parquet (once)             {r['load_seconds']:>8.1f} "
            f"{r['rows'] / r['load_seconds']:>10,.0f}")
        end_to_end = r["load_seconds"] + v["a"]["wall_seconds"]
        log(f"{'':>11} {'':>11} load + (a), end to end                 {end_to_end:>8.1f} "
            f"{r['rows'] / end_to_end:>10,.0f}"
            + (f"   = {end_to_end / v['e']['wall_seconds']:.2f}x (e)" if "e" in v else ""))
        if "incremental" in r:
            inc = r["incremental"]
            log(f"{'':>11} {inc['rows']:>11,} (a) incremental +1 day                 {inc['wall_seconds']:>8.1f}"
                f"   = {inc['wall_seconds'] / v['a']['wall_seconds']:.2f}x the full build")
    if scenario is not None:
        inc = scenario["incremental"]
        log(f"\n== {SCENARIO_DAYS}-day scenario: {scenario['rows']:,} readings over {scenario['days']} days "
            f"({scenario['users']} users), then +1 day ({inc['rows']:,} readings)")
        log(f"  loader, {scenario['days']} days: {scenario['load_seconds']:.1f} s; "
            f"(a) full build: {scenario['full_seconds']:.1f} s")
        log(f"  day {scenario['days'] + 1}: generated {inc.get('generate_seconds', float('nan')):.1f} s, "
            f"loaded {inc['load_seconds']:.1f} s; (a) incremental: {inc['wall_seconds']:.1f} s "
            f"= {scenario['ratio']:.3f}x the full build ({inc['mode']})")
        log(f"  check: {scenario['check']}")
    verdicts = targets(records, scenario)
    log("\n== targets (issue 13, section 1)")
    for t in verdicts:
        log(f"  [{verdict(t['met']):^6}] {t['target']}: {t['measured']} (target {t['goal']}; at {t['at']})")
    info = machine_info or machine()
    log(f"\nmachine: {info['nproc']} cores; free -g: {info['free_g']}; {info['java']}; "
        f"pyspark {info['pyspark']}")
    payload = {
        "argv": argv, "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": info, "protocol": {
            "order": "per size: generate, load, dbt seed (untimed), then a, b, c, d, e each in a "
                     "fresh JVM (sequential), then the incremental day; then the 30-day scenario",
            "a": "dbt run --select +fct_city_stress_matrix --full-refresh (models only)",
            "e": "the notebook of (b) on the landing CSVs (no loader): compare with load + (a)",
            "scenario_30d": f"(a) full build on {SCENARIO_DAYS} days, generate + load one more day, "
                            "(a) without --full-refresh; ratio = incremental / full wall seconds",
            "timing": "wall seconds of the whole subprocess (JVM start, dbt parse included); "
                      "inner_seconds: dbt's elapsed_time or the job's time after session start",
            "tolerance": TOLERANCE,
        },
        "results": records,
        "scenario_30d": scenario,
        "targets": verdicts,
    }
    (out / "benchmark.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    chart(records, scenario, verdicts, out / "benchmark.png")
    log(f"wrote {out / 'benchmark.json'} and {out / 'benchmark.png'}")


def chart(records: list[dict[str, Any]], scenario: dict[str, Any] | None,
          verdicts: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(15, 9.5))
    grid = fig.add_gridspec(2, 3, height_ratios=[1.15, 1])
    ax1, ax2, ax3 = (fig.add_subplot(grid[0, i]) for i in range(3))
    letters = [x for x in VARIANTS if any(x in r["variants"] for r in records)]
    bars = [*letters, "load+a"]
    width = 0.8 / len(bars)
    for i, letter in enumerate(bars):
        if letter == "load+a":
            xs = [j + i * width for j in range(len(records))]
            loads = [r["load_seconds"] for r in records]
            ax1.bar(xs, loads, width, color="lightgrey", hatch="//", label="loader (of load + (a))")
            ax1.bar(xs, [r["variants"]["a"]["wall_seconds"] for r in records], width, bottom=loads,
                    color="C0", alpha=0.55, label="(a) (of load + (a))")
            continue
        xs = [j + i * width for j, r in enumerate(records) if letter in r["variants"]]
        ys = [r["variants"][letter]["wall_seconds"] for r in records if letter in r["variants"]]
        ax1.bar(xs, ys, width, color=f"C{i}", label=f"({letter}) {VARIANTS[letter][0]}")
        pts = [(r["rows"], r["variants"][letter]["wall_seconds"]) for r in records if letter in r["variants"]]
        ax2.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=f"C{i}", label=f"({letter})")
    inc = [(r["rows"], r["incremental"]["wall_seconds"]) for r in records if "incremental" in r]
    if inc:
        ax2.plot([p[0] for p in inc], [p[1] for p in inc], marker="x", linestyle="--", color="C0",
                 label="(a) incremental +1 day (7 days)")
    ax1.set_xticks([j + width * (len(bars) - 1) / 2 for j in range(len(records))])
    ax1.set_xticklabels([f"{r['rows'] / 1e6:.2f}M" for r in records])
    ax1.set_ylabel("wall seconds (fresh JVM each)")
    ax1.set_title("City Stress Matrix, per variant")
    ax1.legend(fontsize=7)
    ax2.set_xlabel("readings")
    ax2.set_ylabel("wall seconds")
    ax2.set_title("scaling")
    ax2.set_ylim(bottom=0)
    ax2.legend(fontsize=8)
    if scenario is not None:
        values = [scenario["full_seconds"], scenario["incremental"]["wall_seconds"]]
        ax3.bar(["(a) full build", "(a) incremental +1 day"], values, color=["C0", "C5"])
        ax3.axhline(0.2 * scenario["full_seconds"], color="k", linestyle=":", label="target: 0.2x the full build")
        ax3.set_title(f"{SCENARIO_DAYS} days ({scenario['rows'] / 1e6:.2f}M readings) + 1 day: "
                      f"ratio {scenario['ratio']:.2f}", fontsize=10)
        ax3.set_ylabel("wall seconds")
        ax3.legend(fontsize=8)
    else:
        ax3.set_axis_off()
        ax3.text(0.5, 0.5, f"{SCENARIO_DAYS}-day scenario not run", ha="center", va="center")
    table_ax = fig.add_subplot(grid[1, :])
    table_ax.set_axis_off()
    colours = {"MET": "#c8f0c8", "MISSED": "#f6c6c6", "n/a": "#e8e8e8"}
    cells = [[t["target"], t["goal"], t["measured"], verdict(t["met"]), t["at"]] for t in verdicts]
    table = table_ax.table(cellText=cells, colLabels=["target (issue 13, section 1)", "goal", "measured",
                                                      "", "at"],
                           colWidths=[0.46, 0.11, 0.13, 0.07, 0.23], loc="center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(8.5)
    table.scale(1, 1.45)
    for row, t in enumerate(verdicts, start=1):
        table[row, 3].set_facecolor(colours[verdict(t["met"])])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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


def report_loader(records: list[dict[str, Any]], out: Path, argv: list[str]) -> None:
    """--loader-only: the loader's figures per size, into loader.json."""
    log("\n== loader (wall seconds of load_raw.py, JVM start included)")
    for r in records:
        lo, hi = r["load_average"]
        log(f"{r['size']:>11,} {r['rows']:>11,} rows  {r['load_seconds']:>7.1f} s  "
            f"{r['rows'] / r['load_seconds']:>9,.0f} rows/s  load average {lo:.1f} -> {hi:.1f}")
    payload = {"argv": argv, "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "machine": machine(), "results": records}
    (out / "loader.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    log(f"wrote {out / 'loader.json'}")
