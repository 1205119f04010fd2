"""The benchmark's targets (issue 13, section 1) computed from its records:
ratios, met or missed, and n/a when a part was not run. No Spark."""

from __future__ import annotations

import json

import pytest

from sflux.bench import report as bench_report
from sflux.bench import runner


def _record(size: int, rows: int, load: float, **walls: float) -> dict:
    return {
        "size": size, "rows": rows, "load_seconds": load,
        "variants": {k: {"label": k, "wall_seconds": w, "inner_seconds": None,
                         "rows_per_second": rows / w} for k, w in walls.items()},
    }


RECORDS = [
    _record(1_000_000, 971_912, 50.0, a=60.0, b=40.0, c=45.0, d=25.0, e=40.0),
    _record(5_000_000, 4_918_811, 70.0, a=50.0, b=55.0, c=100.0, d=30.0, e=80.0),
    _record(20_000_000, 19_681_686, 80.0, a=100.0, b=120.0, c=250.0, d=45.0, e=110.0),
]
SCENARIO = {"rows": 4_900_000, "days": 30, "users": 128, "full_seconds": 100.0, "load_seconds": 60.0,
            "incremental": {"rows": 160_000, "wall_seconds": 15.0, "load_seconds": 20.0,
                            "generate_seconds": 3.0, "mode": "incremental models: x"},
            "ratio": 0.15, "check": "same matrix"}


def _by_name(verdicts: list[dict]) -> dict[str, dict]:
    return {t["target"].split(":")[0]: t for t in verdicts}


def test_every_target_of_section_1_with_its_ratio_and_verdict():
    got = _by_name(bench_report.targets(RECORDS, SCENARIO))
    assert len(got) == 8
    big = got["(a) full build faster than (b) at 20M"]
    assert big["value"] == pytest.approx(1.2) and big["met"] is False  # needs >= 1.3
    assert "19,681,686" in big["at"]
    mid = got["(a) at least as fast as (b) at 5M"]
    assert mid["value"] == pytest.approx(1.1) and mid["met"] is True
    assert "4,918,811" in mid["at"]
    assert got["(a) vs (d) one query at 20M"]["value"] == pytest.approx(100 / 45)
    assert got["(a) vs (d) one query at 20M"]["met"] is False  # 2.22 > 2.0
    assert got["(a) faster than (c) Python UDFs at 20M"]["met"] is True  # 2.5 >= 2
    loader = got["loader throughput at 20M (load_raw.py, JVM start included)"]
    assert loader["value"] == pytest.approx(19_681_686 / 80) and loader["met"] is False  # 246K < 250K
    e2e = got["end to end at 20M"]
    assert e2e["value"] == pytest.approx((80 + 100) / 110) and e2e["met"] is False  # 1.64 > 1.5
    inc = got["one new day on 30 days of history"]
    assert inc["value"] == pytest.approx(0.15) and inc["met"] is True
    growth = next(t for name, t in got.items() if name.startswith("growth of (a)"))
    assert growth["value"] == pytest.approx(2.0) and growth["met"] is True  # limit 1.1 x 4.0


def test_parts_not_run_are_not_applicable_and_one_size_stands_for_20m():
    one = [_record(20_000, 91_840, 30.0, a=60.0, b=40.0, d=25.0)]
    got = _by_name(bench_report.targets(one, None))
    assert got["(a) full build faster than (b) at 20M"]["value"] == pytest.approx(40 / 60)
    assert "91,840" in got["(a) full build faster than (b) at 20M"]["at"]
    for name in ("(a) at least as fast as (b) at 5M", "(a) faster than (c) Python UDFs at 20M",
                 "end to end at 20M", "one new day on 30 days of history"):
        assert got[name]["met"] is None and got[name]["value"] is None, name
    assert next(t for n, t in got.items() if n.startswith("growth of (a)"))["met"] is None


def test_sizes_other_than_5m_and_20m_use_the_largest_and_the_next_one():
    records = [_record(s, s, 10.0, a=s / 1000, b=1.0, d=1.0) for s in (10_000, 30_000, 90_000)]
    growth = next(t for t in bench_report.targets(records) if t["target"].startswith("growth of (a)"))
    assert growth["value"] == pytest.approx(3.0) and growth["at"] == "30,000 -> 90,000 readings"
    assert growth["met"] is True and growth["goal"] == "≤ 3.30x"  # 1.1 x the row ratio


def test_report_only_redraws_table_json_and_chart(tmp_path, capsys):
    machine = {"nproc": "2", "free_g": "n/a", "java": "n/a", "pyspark": "n/a", "python": "3", "platform": "x"}
    bench_report.report(RECORDS, tmp_path, ["--sizes", "x"], machine, SCENARIO)
    first = json.loads((tmp_path / "benchmark.json").read_text(encoding="utf-8"))
    assert len(first["targets"]) == 8 and first["scenario_30d"]["ratio"] == 0.15
    assert (tmp_path / "benchmark.png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "[MISSED] (a) full build faster than (b) at 20M" in printed
    assert "[ MET  ] one new day on 30 days of history" in printed
    again = tmp_path / "again"
    args = type("Args", (), {"out": again, "report_only": tmp_path / "benchmark.json"})()
    assert runner.run_benchmark(args, []) == 0
    assert json.loads((again / "benchmark.json").read_text(encoding="utf-8"))["targets"] == first["targets"]
