"""The benchmark runner behind scripts/benchmark.py (the protocol is in that
script's docstring): per size, generate and load landing data, run every
variant in a fresh process, check that their matrices agree, then time the
incremental dbt run and write bench/benchmark.json and bench/benchmark.png.
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
}


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


def spark_job(variant: str, env, log_file, result: Path) -> tuple[float, dict[str, Any]]:
    wall = run([py(), "-m", "sflux.bench.jobs", variant, "--result", str(result)], env, log_file)
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


def bench_size(size: int, args, out: Path) -> dict[str, Any]:
    users = max(10, round(size / (args.days * READINGS_PER_USER_DAY)))
    work = out / "work" / str(size)
    shutil.rmtree(work, ignore_errors=True)
    landing, data_dir = work / "landing", work / "data"
    data_dir.mkdir(parents=True)
    log_file = out / f"bench_{size}.log"
    log_file.write_text("", encoding="utf-8")
    env = base_env(data_dir, args.cores)
    start = dt.date(2026, 11, 1)

    log(f"\n== size {size:,}: {users} users x {args.days} days (seed {args.seed}); log {log_file}")
    gen_s = generate(landing, users, args.days, args.seed, start, env, log_file)
    rows = count_rows(landing)
    log(f"generated {rows:,} readings in {gen_s:.1f} s")
    load_before = os.getloadavg()[0]
    load_s = load(landing, env, log_file)
    # The machine may be shared: the 1-minute load average says how much.
    load_avg = (load_before, os.getloadavg()[0])
    log(f"loader (CSV -> raw parquet, load_raw.py incl. JVM start): {load_s:.1f} s "
        f"({rows / load_s:,.0f} rows/s; load average {load_avg[0]:.1f} before, {load_avg[1]:.1f} after)")
    if args.loader_only:
        if not args.keep_data:
            shutil.rmtree(work, ignore_errors=True)
        return {"size": size, "users": users, "days": args.days, "rows": rows,
                "generate_seconds": gen_s, "load_seconds": load_s, "load_average": load_avg}
    seed_s = run([dbt(), "seed", "--project-dir", str(REPO)], env, log_file)
    log(f"dbt seed (untimed setup): {seed_s:.1f} s")

    letters = ["a", "b", "c", "d"] if not args.skip_udf else ["a", "b", "d"]
    timings: dict[str, dict[str, Any]] = {}
    matrices: dict[str, dict] = {}
    for attempt in range(args.repeat):
        for letter in letters:
            label, how = VARIANTS[letter]
            if how == "dbt":
                wall, inner = dbt_models(env, log_file, full_refresh=True)
                matrix = normalise(dbt_matrix(data_dir))
            else:
                wall, result = spark_job(how, env, log_file, work / f"result_{letter}.json")
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
        problems = matrix_diff(reference, matrices[letter])
        if problems:
            raise SystemExit(f"benchmark.py: error: ({letter}) and (d) disagree at size {size}: "
                             + "; ".join(problems[:10]))
    filled = sum(v is not None for row in reference.values() for v in row.values())
    log(f"  check: {', '.join(f'({x})' for x in letters)} give the same matrix "
        f"({len(reference)} cities, {filled} unsuppressed cells, tolerance {TOLERANCE})")

    record: dict[str, Any] = {
        "size": size, "users": users, "days": args.days, "rows": rows,
        "generate_seconds": gen_s, "load_seconds": load_s, "variants": timings,
        "cells_unsuppressed": filled, "cities": len(reference),
    }
    if not args.skip_incremental:
        record["incremental"] = incremental_day(args, users, start, work, env, log_file)
    if not args.keep_data:
        shutil.rmtree(work, ignore_errors=True)
    return record


def incremental_day(args, users: int, start: dt.date, work: Path, env, log_file) -> dict[str, Any]:
    """One more day on top of the full build of (a): generate it (same users
    and seed), land it next to the subscriptions already loaded, load it and
    time the same dbt command without --full-refresh."""
    next_day = start + dt.timedelta(days=args.days)
    extra = work / "landing_next_day"
    generate(extra, users, 1, args.seed, next_day, env, log_file)
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
    log(f"  incremental: +1 day ({next_day}, {day_rows:,} readings) loaded in {load_s:.1f} s; "
        f"dbt run without --full-refresh {wall:.1f} s wall ({mode})")
    return {"date": next_day.isoformat(), "rows": day_rows, "load_seconds": load_s,
            "wall_seconds": wall, "inner_seconds": inner, "mode": mode}


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


def targets(records: list[dict[str, Any]]) -> list[tuple[str, bool | None, str]]:
    out = []
    a_b, a_c, a_d = [], [], []
    for r in records:
        v = r["variants"]
        a = v["a"]["wall_seconds"]
        a_b.append((r["size"], v["b"]["wall_seconds"] / a))
        if "c" in v:
            a_c.append((r["size"], v["c"]["wall_seconds"] / a))
        a_d.append((r["size"], a / v["d"]["wall_seconds"]))

    def fmt(pairs):
        return ", ".join(f"{s:,}: {x:.2f}x" for s, x in pairs)

    out.append(("(a) at least as fast as (b) at every size (aim 1.3x): time(b)/time(a)",
                all(x >= 1.0 for _, x in a_b), fmt(a_b)
                + (" - aim of 1.3x " + ("met" if all(x >= 1.3 for _, x in a_b) else "not met"))))
    out.append(("(a) at least 2x faster than (c): time(c)/time(a)",
                all(x >= 2.0 for _, x in a_c) if a_c else None, fmt(a_c) or "(c) skipped"))
    out.append(("(a) within 1.3x of (d): time(a)/time(d)", all(x <= 1.3 for _, x in a_d), fmt(a_d)))
    if len(records) >= 2:
        lo, hi = records[0], records[-1]
        row_ratio = hi["rows"] / lo["rows"]
        parts, ok = [], True
        for letter in ("a", "b", "c", "d"):
            if letter in lo["variants"] and letter in hi["variants"]:
                t_ratio = hi["variants"][letter]["wall_seconds"] / lo["variants"][letter]["wall_seconds"]
                parts.append(f"({letter}) x{t_ratio:.2f}")
                ok = ok and (letter != "a" or t_ratio <= 1.2 * row_ratio)
        out.append((f"time linear in rows: (a)'s time grows at most 1.2x the row ratio "
                    f"(rows x{row_ratio:.2f})", ok, ", ".join(parts)))
    else:
        out.append(("time linear in rows", None, "needs at least two sizes"))
    return out


def report(records: list[dict[str, Any]], out: Path, argv: list[str],
           machine_info: dict[str, Any] | None = None) -> None:
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
        if "incremental" in r:
            inc = r["incremental"]
            log(f"{'':>11} {inc['rows']:>11,} (a) incremental +1 day                 {inc['wall_seconds']:>8.1f}"
                f"   = {inc['wall_seconds'] / v['a']['wall_seconds']:.2f}x the full build")
    verdicts = targets(records)
    log("\n== targets")
    for name, ok, detail in verdicts:
        state = "n/a" if ok is None else ("MET" if ok else "MISSED")
        log(f"  [{state:^6}] {name}: {detail}")
    info = machine_info or machine()
    log(f"\nmachine: {info['nproc']} cores; free -g: {info['free_g']}; {info['java']}; "
        f"pyspark {info['pyspark']}")
    payload = {
        "argv": argv, "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": info, "protocol": {
            "order": "per size: generate, load, dbt seed (untimed), then a, b, c, d each in a fresh "
                     "JVM (sequential), then the incremental day",
            "a": "dbt run --select +fct_city_stress_matrix --full-refresh (models only)",
            "timing": "wall seconds of the whole subprocess (JVM start, dbt parse included); "
                      "inner_seconds: dbt's elapsed_time or the job's time after session start",
            "tolerance": TOLERANCE,
        },
        "results": records,
        "targets": [{"target": n, "met": ok, "detail": d} for n, ok, d in verdicts],
    }
    (out / "benchmark.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    chart(records, out / "benchmark.png")
    log(f"wrote {out / 'benchmark.json'} and {out / 'benchmark.png'}")


def chart(records: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    letters = [x for x in "abcd" if any(x in r["variants"] for r in records)]
    width = 0.8 / len(letters)
    for i, letter in enumerate(letters):
        xs = [j + i * width for j, r in enumerate(records) if letter in r["variants"]]
        ys = [r["variants"][letter]["wall_seconds"] for r in records if letter in r["variants"]]
        ax1.bar(xs, ys, width, label=f"({letter}) {VARIANTS[letter][0]}")
        pts = [(r["rows"], r["variants"][letter]["wall_seconds"]) for r in records if letter in r["variants"]]
        ax2.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"({letter})")
    inc = [(r["rows"], r["incremental"]["wall_seconds"]) for r in records if "incremental" in r]
    if inc:
        ax2.plot([p[0] for p in inc], [p[1] for p in inc], marker="x", linestyle="--",
                 label="(a) incremental +1 day")
    ax1.set_xticks([j + width * (len(letters) - 1) / 2 for j in range(len(records))])
    ax1.set_xticklabels([f"{r['rows'] / 1e6:.2f}M" for r in records])
    ax1.set_ylabel("wall seconds (fresh JVM each)")
    ax1.set_title("City Stress Matrix from the raw zone")
    ax1.legend(fontsize=8)
    ax2.set_xlabel("readings")
    ax2.set_ylabel("wall seconds")
    ax2.set_title("scaling")
    ax2.set_ylim(bottom=0)
    ax2.legend(fontsize=8)
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
        report(previous["results"], out, previous["argv"], previous.get("machine"))
        return 0
    # A caller's key is used as is; otherwise a random one for this run only.
    # It is passed through the environment and never printed.
    if len(keys.key_in_env()) < keys.MIN_KEY_LENGTH:
        os.environ[keys.KEY_ENV] = secrets.token_hex(32)
    records = []
    for size in sorted(args.sizes):
        records.append(bench_size(size, args, out))
        if args.loader_only:
            report_loader(records, out, argv)
        else:
            report(records, out, argv)  # partial results survive a later failure
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
