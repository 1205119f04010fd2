"""The benchmark's report (scripts/benchmark.py): the printed table, the
targets of issue 13, section 1 (goal, measured figure, met or missed),
bench/benchmark.json and the chart bench/benchmark.png; and the loader-only
report. Pure Python and matplotlib: ``--report-only`` needs no Spark.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

TOLERANCE = 1e-9
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
                why_na="needs 2 sizes"),
        _target("(a) vs (d) one query at 20M: time(a)/time(d)",
                _ratio(_wall(big, "a"), _wall(big, "d")), "<=", 2.0, where(big)),
        _target("(a) faster than (c) Python UDFs at 20M: time(c)/time(a)",
                _ratio(_wall(big, "c"), _wall(big, "a")), ">=", 2.0, where(big),
                why_na="(c) not run"),
        _target("loader throughput at 20M (load_raw.py, JVM start included)",
                None if big is None else big["rows"] / big["load_seconds"], ">=",
                LOADER_ROWS_PER_SECOND, where(big), unit="rows/s"),
        _target("end to end at 20M: (load + (a)) / (e) notebook on the landing CSVs",
                None if _wall(big, "e") is None else (big["load_seconds"] + _wall(big, "a")) / _wall(big, "e"),
                "<=", 1.5, where(big), why_na="(e) not run"),
        _target(f"one new day on {SCENARIO_DAYS} days of history: incremental / full build of (a)",
                None if scenario is None else scenario["ratio"], "<=", 0.2,
                "n/a" if scenario is None else f"{scenario['rows']:,} readings + {scenario['incremental']['rows']:,}",
                why_na="not run"),
    ]
    growth, row_ratio = None, None
    if big is not None and mid is not None:
        growth, row_ratio = _ratio(_wall(big, "a"), _wall(mid, "a")), big["rows"] / mid["rows"]
    # 4.4x for 4x the rows: at most 1.1x the row ratio (linear or better).
    limit = 1.1 * (row_ratio or 4.0)
    out.append(_target(f"growth of (a) from 5M to 20M (rows x{row_ratio or 4.0:.2f}): time ratio",
                       growth, "<=", limit,
                       "n/a" if mid is None else f"{mid['rows']:,} -> {big['rows']:,} readings",
                       why_na="needs 2 sizes"))
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
        if "floor_seconds" in scenario:
            log(f"  floor (same run, nothing new, no lookback): {scenario['floor_seconds']:.1f} s "
                f"= {scenario['floor_seconds'] / scenario['full_seconds']:.3f}x the full build")
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
