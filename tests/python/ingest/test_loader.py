"""The raw loader (scripts/load_raw.py, scripts/sflux/ingest/).

Tiny hand-written CSV files in tmp_path; one Spark session (conftest); every
test starts from an empty raw schema.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sflux.core.errors import UserError
from sflux.ingest import contract, layout, loader, parsing, results
from sflux.privacy import keys
from script_loader import load_script

REPO_ROOT = Path(__file__).resolve().parents[3]
CLI = REPO_ROOT / "scripts" / "load_raw.py"

SUBS_HEADER = "user_id,subscription_type,start_date"
VITALS_HEADER = "user_id,full_name,city,device_id,reading_ts,heart_rate"
TABLES = ("raw.subscriptions", "raw.vitals", "raw.quarantine", "raw.users", "raw.events",
          "raw.consent_events")
TS_FORMAT = "yyyy-MM-dd HH:mm:ss.SSSSSS"
READING_TS = "date_format(reading_ts, 'yyyy-MM-dd HH:mm:ss')"


def write(path: Path, lines: list[str], *, bom: bool = False, eol: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = eol.join(lines) + eol
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def landing(directory: Path, vitals: dict[str, list[str]], subs: list[str] | None = None) -> Path:
    """A landing dir: subscriptions.csv + the given vitals files (data lines)."""
    write(directory / "subscriptions.csv", [SUBS_HEADER, *(subs or ["u1,Basic,2024-01-01"])])
    for name, rows in vitals.items():
        write(directory / name, [VITALS_HEADER, *rows])
    return directory


def rows(spark, table: str, *columns: str) -> list[tuple]:
    """Sorted rows; columns are SQL expressions (timestamps are compared as
    UTC strings: Python would convert them to its local time zone)."""
    df = spark.table(table)
    exprs = columns or [
        f"date_format({f.name}, '{TS_FORMAT}')" if f.dataType.simpleString() == "timestamp" else f.name
        for f in df.schema
    ]
    return sorted(tuple(r) for r in df.selectExpr(*exprs).collect())


def loaded_at(result: loader.LoadResult) -> str:
    return result.loaded_at.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def snapshot(spark) -> dict[str, list[tuple]]:
    state = {t: rows(spark, t) for t in TABLES}
    state["partitions"] = sorted(r[0] for r in spark.sql("SHOW PARTITIONS raw.vitals").collect())
    return state


SAVED = "__saved_by_test_loader"


def raw_tables(spark) -> list[str]:
    """Tables of the raw schema, except those put aside by this module."""
    return sorted(
        r["tableName"]
        for r in spark.sql("SHOW TABLES IN raw").collect()
        if not r["isTemporary"] and not r["tableName"].endswith(SAVED)
    )


def leftovers(spark) -> list[str]:
    """Anything a load leaves behind besides the raw tables."""
    extra = sorted(set(raw_tables(spark)) - {t.split(".")[1] for t in TABLES})
    if loader.Staging(spark).exists():
        extra.append(layout.STAGING_DIR)
    return extra


@pytest.fixture(scope="module", autouse=True)
def preserve_raw(spark):
    """The session and its warehouse are shared with other test modules (the
    end-to-end build loads raw too): put their raw tables aside, bring them
    back afterwards, and leave none of ours behind."""
    spark.sql("CREATE SCHEMA IF NOT EXISTS raw")
    saved = raw_tables(spark)
    for name in saved:
        spark.sql(f"ALTER TABLE raw.`{name}` RENAME TO raw.`{name}{SAVED}`")
    yield
    for name in raw_tables(spark):
        spark.sql(f"DROP TABLE IF EXISTS raw.`{name}`")
    for name in saved:
        spark.sql(f"ALTER TABLE raw.`{name}{SAVED}` RENAME TO raw.`{name}`")


@pytest.fixture(autouse=True)
def clean_raw(spark, preserve_raw):
    for name in raw_tables(spark):
        spark.sql(f"DROP TABLE IF EXISTS raw.`{name}`")
    yield


# --------------------------------------------------------------------------
# Happy path
# --------------------------------------------------------------------------


def test_tricky_values_load_exactly(spark, tmp_path):
    subs = write(
        tmp_path / "in" / "subscriptions.csv",
        [SUBS_HEADER, "u1,Basic,2024-01-01", "u2,Premium,2023-12-31", '"u,3",VIP,2024-02-29'],
        bom=True,
        eol="\r\n",
    )
    vitals = [
        'u1,"Dupont, Jean",Zürich,d1,2024-01-01 10:00:00,72',
        'u2,"Jean ""JJ"" Martin",Kraków,d2,2024-01-01 23:59:59,',
        "u3,O'Brien,Saint-Étienne,d3,2024-01-02 00:00:00,-5",
        'u4,"""Quoted""",  Lyon ,d4,2024-01-02 12:30:00,0072',
        'u5,"a,b,""c""",Łódź,"d,5",2024-01-03 08:00:00,180',
        "u6,Back\\slash,São Paulo,d6,2024-01-03 08:00:01,60",
    ]
    write(tmp_path / "in" / "vitals_2024-01-01.csv", [VITALS_HEADER, *vitals])

    result = loader.load_raw(spark, tmp_path / "in")

    assert subs.exists()
    assert rows(spark, "raw.subscriptions", "user_id", "subscription_type", "start_date", "_source_file", "_source_line") == [
        ("u,3", "VIP", dt.date(2024, 2, 29), "subscriptions.csv", 4),
        ("u1", "Basic", dt.date(2024, 1, 1), "subscriptions.csv", 2),
        ("u2", "Premium", dt.date(2023, 12, 31), "subscriptions.csv", 3),
    ]
    columns = ("user_id", "full_name", "city", "device_id", READING_TS, "heart_rate")
    assert rows(spark, "raw.vitals", *columns, "reading_date", "_source_file", "_source_line") == [
        ("u1", "Dupont, Jean", "Zürich", "d1", "2024-01-01 10:00:00", 72, dt.date(2024, 1, 1), "vitals_2024-01-01.csv", 2),
        ("u2", 'Jean "JJ" Martin', "Kraków", "d2", "2024-01-01 23:59:59", None, dt.date(2024, 1, 1), "vitals_2024-01-01.csv", 3),
        ("u3", "O'Brien", "Saint-Étienne", "d3", "2024-01-02 00:00:00", -5, dt.date(2024, 1, 2), "vitals_2024-01-01.csv", 4),
        ("u4", '"Quoted"', "  Lyon ", "d4", "2024-01-02 12:30:00", 72, dt.date(2024, 1, 2), "vitals_2024-01-01.csv", 5),
        ("u5", 'a,b,"c"', "Łódź", "d,5", "2024-01-03 08:00:00", 180, dt.date(2024, 1, 3), "vitals_2024-01-01.csv", 6),
        ("u6", "Back\\slash", "São Paulo", "d6", "2024-01-03 08:00:01", 60, dt.date(2024, 1, 3), "vitals_2024-01-01.csv", 7),
    ]
    assert rows(spark, "raw.quarantine") == []
    # One load timestamp on every row, and it is the one reported.
    stamps = rows(spark, "raw.vitals", f"date_format(_loaded_at, '{TS_FORMAT}')")
    stamps += rows(spark, "raw.subscriptions", f"date_format(_loaded_at, '{TS_FORMAT}')")
    assert set(stamps) == {(loaded_at(result),)}

    assert (result["subscriptions"].read, result["subscriptions"].loaded, result["subscriptions"].quarantined) == (3, 3, 0)
    assert (result["vitals"].read, result["vitals"].loaded, result["vitals"].quarantined) == (6, 6, 0)
    assert result.read == result.loaded == 9
    assert leftovers(spark) == []
    # Table schemas (types are part of the contract with dbt).
    assert [(f.name, f.dataType.simpleString()) for f in spark.table("raw.vitals").schema] == [
        ("user_id", "string"), ("full_name", "string"), ("city", "string"), ("device_id", "string"),
        ("reading_ts", "timestamp"), ("heart_rate", "int"), ("_source_file", "string"),
        ("_source_line", "bigint"), ("_loaded_at", "timestamp"), ("reading_date", "date"),
    ]
    assert [(f.name, f.dataType.simpleString()) for f in spark.table("raw.quarantine").schema] == [
        ("dataset", "string"), ("source_file", "string"), ("line_number", "bigint"),
        ("reason", "string"), ("raw_line", "string"), ("loaded_at", "timestamp"),
    ]


# --------------------------------------------------------------------------
# Quarantine
# --------------------------------------------------------------------------


def test_malformed_rows_are_quarantined_with_file_line_and_reason(spark, tmp_path):
    good = "u1,Ann,Paris,d1,2024-01-01 10:00:00,70"
    bad_vitals = [
        ("u1,Ann,Paris,d1,2024-01-01 10:00:00", "wrong field count: 5, expected 6"),
        ("u1,Ann,Paris,d1,2024-01-01 10:00:00,70,1", "wrong field count: 7, expected 6"),
        ('u1,"Ann,Paris,d1,2024-01-01 10:00:00,70', "malformed quotes"),
        ('u1,An"n,Paris,d1,2024-01-01 10:00:00,70', "malformed quotes"),
        ('u1,"Ann" ,Paris,d1,2024-01-01 10:00:00,70', "malformed quotes"),
        ("", "blank line"),
        ("   ", "blank line"),
        ("u1,Ann,Paris,d1,2024-01-01T10:00:00,70", "unparseable reading_ts"),
        ("u1,Ann,Paris,d1,2024-02-30 10:00:00,70", "unparseable reading_ts"),
        ("u1,Ann,Paris,d1,+12024-01-01 10:00:00,70", "unparseable reading_ts"),
        ("u1,Ann,Paris,d1,,70", "missing reading_ts"),
        ("u1,Ann,Paris,d1,2024-01-01 10:00:00,7o", "unparseable heart_rate"),
        ("u1,Ann,Paris,d1,2024-01-01 10:00:00,72.5", "unparseable heart_rate"),
        ("u1,Ann,Paris,d1,2024-01-01 10:00:00, 72", "unparseable heart_rate"),
        ("u1,Ann,Paris,d1,2024-01-01 10:00:00,99999999999", "unparseable heart_rate"),
        (",Ann,Paris,d1,2024-01-01 10:00:00,70", "missing user_id"),
        ("u1,  ,Paris,d1,2024-01-01 10:00:00,70", "missing full_name"),
        ('u1,Ann,"",d1,2024-01-01 10:00:00,70', "missing city"),
        (",Ann,Paris,d1,bad,x", "missing user_id; unparseable reading_ts; unparseable heart_rate"),
        (VITALS_HEADER, "unparseable reading_ts; unparseable heart_rate"),
    ]
    bad_subs = [
        ("u2,Gold,2024-01-01", "unknown subscription_type"),
        ("u3,basic,2024-01-01", "unknown subscription_type"),
        ("u4,,2024-01-01", "missing subscription_type"),
        ("u5,VIP,2024-1-01", "unparseable start_date"),
        ("u6,VIP,", "missing start_date"),
        ("u7,VIP", "wrong field count: 2, expected 3"),
    ]
    d = tmp_path / "in"
    write(d / "subscriptions.csv", [SUBS_HEADER, "u1,Basic,2024-01-01", *(line for line, _ in bad_subs)])
    write(d / "vitals.csv", [VITALS_HEADER, good, *(line for line, _ in bad_vitals), good])
    write(d / "vitals_b.csv", [VITALS_HEADER, good, "u9,Bob,Nice,d9,2024-01-01 10:00:00"])
    write(d / "vitals_empty.csv", [VITALS_HEADER])
    # Invalid UTF-8 in a data line (the header is fine).
    (d / "vitals_c.csv").write_bytes(
        (VITALS_HEADER + "\n").encode() + b"u1,Ren\xe9,Paris,d1,2024-01-01 10:00:00,70\n" + (good + "\n").encode()
    )

    result = loader.load_raw(spark, d)

    expected = [("subscriptions", "subscriptions.csv", i + 3, reason, line) for i, (line, reason) in enumerate(bad_subs)]
    expected += [("vitals", "vitals.csv", i + 3, reason, line) for i, (line, reason) in enumerate(bad_vitals)]
    expected += [
        ("vitals", "vitals_b.csv", 3, "wrong field count: 5, expected 6", "u9,Bob,Nice,d9,2024-01-01 10:00:00"),
        ("vitals", "vitals_c.csv", 2, "invalid UTF-8", "u1,Ren\ufffd,Paris,d1,2024-01-01 10:00:00,70"),
    ]
    assert rows(spark, "raw.quarantine", "dataset", "source_file", "line_number", "reason", "raw_line") == sorted(expected)
    assert rows(spark, "raw.vitals", "_source_file", "_source_line") == [
        ("vitals.csv", 2), ("vitals.csv", len(bad_vitals) + 3), ("vitals_b.csv", 2), ("vitals_c.csv", 3),
    ]
    assert rows(spark, "raw.subscriptions", "user_id") == [("u1",)]

    counts = {(f.dataset, f.file): (f.read, f.loaded, f.quarantined) for d_ in result.datasets for f in d_.files}
    assert counts == {
        ("subscriptions", "subscriptions.csv"): (len(bad_subs) + 1, 1, len(bad_subs)),
        ("vitals", "vitals.csv"): (len(bad_vitals) + 2, 2, len(bad_vitals)),
        ("vitals", "vitals_b.csv"): (2, 1, 1),
        ("vitals", "vitals_c.csv"): (2, 1, 1),
        ("vitals", "vitals_empty.csv"): (0, 0, 0),
    }
    assert all(f.balanced for d_ in result.datasets for f in d_.files)
    report = "\n".join(results.format_report(result))
    assert "vitals_b.csv" in report and f"read {result.read} = loaded {result.loaded} + quarantined {result.quarantined}" in report


def test_line_numbers_are_exact_across_many_blocks(spark, tmp_path):
    """Small splits: files cut into many blocks, several blocks per partition."""
    d = tmp_path / "in"
    big = [f"u{i},Name {i},City,d{i},2024-01-01 10:00:00,{i}" for i in range(2, 302)]  # line i holds i
    big[100] = "u102,broken"  # line 102
    big[250] = ""  # line 252
    write(d / "vitals_big.csv", [VITALS_HEADER, *big])
    write(d / "vitals_s1.csv", [VITALS_HEADER, "u2,A,B,d2,2024-01-02 10:00:00,2"])
    write(d / "vitals_s2.csv", [VITALS_HEADER, "u2,A,B,d2,2024-01-02 10:00:00,2", "u3,A,B,d3,2024-01-02 10:00:00,3"])
    write(d / "subscriptions.csv", [SUBS_HEADER, *(f"u{i},Basic,2024-01-01" for i in range(100))])

    keys = ("spark.sql.files.maxPartitionBytes", "spark.sql.files.openCostInBytes")
    saved = {k: spark.conf.get(k) for k in keys}
    spark.conf.set(keys[0], "1024")
    spark.conf.set(keys[1], "1")
    try:
        files = contract.VITALS.files(d)
        numbered, blocks = loader.number_lines(spark, files)
        assert len(blocks) > 10
        partitions = [b.partition for b in blocks]
        assert len(set(partitions)) > 1 and len(set(partitions)) < len(partitions)  # packed
        got = sorted((r["_source_file"], r["_source_line"], r["value"]) for r in numbered.collect())
        want = sorted(
            (p.name, i + 1, line) for p in files for i, line in enumerate(p.read_text("utf-8").split("\n")[:-1])
        )
        assert got == want
        assert loader.lines_read(blocks) == {"vitals_big.csv": 300, "vitals_s1.csv": 1, "vitals_s2.csv": 2}

        result = loader.load_raw(spark, d)
    finally:
        for k, v in saved.items():
            spark.conf.set(k, v)

    mismatched = spark.table("raw.vitals").where("_source_file = 'vitals_big.csv' AND heart_rate != _source_line")
    assert mismatched.count() == 0
    assert rows(spark, "raw.quarantine", "source_file", "line_number", "reason") == [
        ("vitals_big.csv", 102, "wrong field count: 2, expected 6"),
        ("vitals_big.csv", 252, "blank line"),
    ]
    assert rows(spark, "raw.subscriptions", "_source_line") == [(i,) for i in range(2, 102)]
    assert result["vitals"].file("vitals_big.csv").loaded == 298
    assert result["vitals"].read == 303 and result["subscriptions"].read == 100


# --------------------------------------------------------------------------
# Idempotence, history, replacement
# --------------------------------------------------------------------------


def test_reloading_the_same_dir_duplicates_nothing(spark, tmp_path):
    d = landing(
        tmp_path / "in",
        {"vitals.csv": ["u1,A,B,d1,2024-01-01 10:00:00,70", "u1,A,B,d1,2024-01-02 10:00:00,71", "bad"]},
        ["u1,Basic,2024-01-01", "u2,Nope,2024-01-01"],
    )
    first = loader.load_raw(spark, d)
    def state():
        return {t: rows(spark, t, *[c for c in spark.table(t).columns if "loaded_at" not in c]) for t in TABLES}

    before = state()
    second = loader.load_raw(spark, d)
    assert state() == before
    assert first.datasets == second.datasets
    assert spark.table("raw.vitals").count() == 2
    assert spark.table("raw.quarantine").count() == 2
    # Every row is from the second load now.
    assert set(rows(spark, "raw.vitals", f"date_format(_loaded_at, '{TS_FORMAT}')")) == {(loaded_at(second),)}
    assert first.loaded_at < second.loaded_at


def test_a_second_dir_with_another_day_adds_to_the_history(spark, tmp_path):
    day1 = landing(tmp_path / "d1", {"vitals_2024-01-01.csv": ["u1,A,B,d1,2024-01-01 10:00:00,70", "x"]})
    day2 = landing(
        tmp_path / "d2",
        {"vitals_2024-01-02.csv": ["u1,A,B,d1,2024-01-02 10:00:00,75", "u2,C,D,d2,2024-01-02 11:00:00,80", "y"]},
        ["u1,Premium,2024-01-02"],
    )
    loader.load_raw(spark, day1)
    result = loader.load_raw(spark, day2)
    assert rows(spark, "raw.vitals", "_source_file", "heart_rate", "reading_date") == [
        ("vitals_2024-01-01.csv", 70, dt.date(2024, 1, 1)),
        ("vitals_2024-01-02.csv", 75, dt.date(2024, 1, 2)),
        ("vitals_2024-01-02.csv", 80, dt.date(2024, 1, 2)),
    ]
    assert rows(spark, "raw.quarantine", "source_file", "raw_line") == [
        ("vitals_2024-01-01.csv", "x"), ("vitals_2024-01-02.csv", "y"),
    ]
    # subscriptions.csv is one file name: the newer one replaces it.
    assert rows(spark, "raw.subscriptions", "user_id", "subscription_type") == [("u1", "Premium")]
    assert result["vitals"].read == 3  # this load only
    assert snapshot(spark)["partitions"] == ["reading_date=2024-01-01", "reading_date=2024-01-02"]


def test_reloading_a_changed_file_replaces_its_rows_only(spark, tmp_path):
    first = landing(
        tmp_path / "d1",
        {
            "vitals_a.csv": ["ua,A,B,d1,2024-01-01 10:00:00,1", "ua,A,B,d1,2024-01-02 10:00:00,2", "bad a"],
            "vitals_b.csv": ["ub,A,B,d1,2024-01-02 10:00:00,3", "bad b"],
        },
    )
    loader.load_raw(spark, first)
    assert snapshot(spark)["partitions"] == ["reading_date=2024-01-01", "reading_date=2024-01-02"]
    changed = landing(
        tmp_path / "d2",
        {"vitals_a.csv": ["ua,A,B,d1,2024-01-03 10:00:00,4", "ua,A,B,d1,2024-01-02 12:00:00,5"]},
    )
    loader.load_raw(spark, changed)
    assert rows(spark, "raw.vitals", "_source_file", "heart_rate", "reading_date") == [
        ("vitals_a.csv", 4, dt.date(2024, 1, 3)),
        ("vitals_a.csv", 5, dt.date(2024, 1, 2)),
        ("vitals_b.csv", 3, dt.date(2024, 1, 2)),
    ]
    assert rows(spark, "raw.quarantine", "source_file", "raw_line") == [("vitals_b.csv", "bad b")]
    # 2024-01-01 only held rows of the old vitals_a.csv: the partition is gone.
    assert snapshot(spark)["partitions"] == ["reading_date=2024-01-02", "reading_date=2024-01-03"]


# --------------------------------------------------------------------------
# Failures leave the previous state intact
# --------------------------------------------------------------------------


def _two_loads(tmp_path: Path) -> tuple[Path, Path]:
    first = landing(
        tmp_path / "d1",
        {
            "vitals_a.csv": ["ua,A,B,d1,2024-01-01 10:00:00,1", "bad a"],
            "vitals_b.csv": ["ub,A,B,d1,2024-01-02 10:00:00,2"],
        },
        ["u1,Basic,2024-01-01", "u2,Bad,2024-01-01"],
    )
    second = landing(
        tmp_path / "d2",
        {
            "vitals_a.csv": ["ua,A,B,d1,2024-01-03 10:00:00,3"],  # empties 2024-01-01
            "vitals_c.csv": ["uc,A,B,d1,2024-01-02 10:00:00,4", "bad c"],
        },
        ["u1,VIP,2024-01-01"],
    )
    return first, second


def test_a_failed_publish_restores_the_previous_tables(spark, tmp_path, monkeypatch):
    first, second = _two_loads(tmp_path)
    loader.load_raw(spark, first)
    before = snapshot(spark)

    real = loader._publish_step
    published = []

    def failing(spark_, step):
        if step.target == "raw.vitals":  # the last step, after the others
            real(spark_, step)  # even after it has run (e.g. a late failure)
            raise RuntimeError("disk full")
        published.append(step.target)
        real(spark_, step)

    monkeypatch.setattr(loader, "_publish_step", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        loader.load_raw(spark, second)
    assert published == ["raw.subscriptions", "raw.quarantine"]
    assert snapshot(spark) == before
    assert leftovers(spark) == []
    # A load that only adds a partition (nothing to back up) is undone too.
    new_day = landing(tmp_path / "d3", {"vitals_d.csv": ["ud,A,B,d1,2024-01-09 10:00:00,9"]})
    with pytest.raises(RuntimeError, match="disk full"):
        loader.load_raw(spark, new_day)
    assert snapshot(spark) == before

    monkeypatch.undo()
    loader.load_raw(spark, second)
    assert rows(spark, "raw.vitals", "_source_file", "heart_rate") == [
        ("vitals_a.csv", 3), ("vitals_b.csv", 2), ("vitals_c.csv", 4),
    ]
    assert rows(spark, "raw.subscriptions", "user_id", "subscription_type") == [("u1", "VIP")]
    assert rows(spark, "raw.quarantine", "source_file", "raw_line") == [("vitals_c.csv", "bad c")]
    assert snapshot(spark)["partitions"] == ["reading_date=2024-01-02", "reading_date=2024-01-03"]


def test_a_reconciliation_failure_publishes_nothing(spark, tmp_path, monkeypatch, capsys):
    first, second = _two_loads(tmp_path)
    loader.load_raw(spark, first)
    before = snapshot(spark)

    real = loader.lines_read
    monkeypatch.setattr(
        loader, "lines_read", lambda blocks, **kw: {k: v + 1 for k, v in real(blocks, **kw).items()}
    )
    with pytest.raises(loader.ReconciliationError, match=r"vitals/vitals_c.csv: read 3 != loaded 1 \+ quarantined 1"):
        loader.load_raw(spark, second)
    assert snapshot(spark) == before
    assert leftovers(spark) == []

    # Through the CLI (in-process: it reuses this session): exit 1, one line.
    load_raw = load_script("load_raw")

    capsys.readouterr()
    assert load_raw.main(["--input", str(second), "--quiet"]) == 1
    out = capsys.readouterr()
    assert out.out == ""  # --quiet: no progress lines
    assert out.err.count("\n") == 1 and out.err.startswith("load_raw: error: reconciliation failed")
    assert snapshot(spark) == before

    monkeypatch.undo()
    assert load_raw.main(["--input", str(second)]) == 0
    out = capsys.readouterr()
    assert out.err == ""
    assert "vitals_c.csv" in out.out and "reconciled: read 4 = loaded 3 + quarantined 1" in out.out


# --------------------------------------------------------------------------
# Pre-flight: plain Python, before Spark
# --------------------------------------------------------------------------


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SANTEFLUX_DATA_DIR=str(tmp_path / "untouched-data"))
    return subprocess.run(
        [sys.executable, str(CLI), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


@pytest.mark.parametrize(
    "case, expected",
    [
        ("no-dir", r"input directory .*/nowhere does not exist"),
        ("no-vitals", r"no vitals file in .* \(expected vitals.csv or vitals\*.csv\)"),
        ("no-subs", r"no subscriptions file in .* \(expected subscriptions.csv\)"),
        (
            "bad-header",
            r"vitals_2.csv: header does not match the vitals contract: "
            r"expected 'user_id,full_name,city,device_id,reading_ts,heart_rate', "
            r"found 'user_id,full_name,city,device_id,reading_ts'",
        ),
        ("empty-file", r"vitals.csv: header does not match the vitals contract: expected '.*', found ''"),
    ],
)
def test_preflight_errors_exit_2_with_one_line_before_spark(tmp_path, case, expected):
    d = tmp_path / "in"
    if case != "no-dir":
        landing(d, {"vitals.csv": ["u1,A,B,d1,2024-01-01 10:00:00,70"]})
    if case == "no-vitals":
        (d / "vitals.csv").unlink()
    elif case == "no-subs":
        (d / "subscriptions.csv").unlink()
    elif case == "bad-header":
        write(d / "vitals_2.csv", ["user_id,full_name,city,device_id,reading_ts", "u1,A,B,d1,2024-01-01 10:00:00"])
    elif case == "empty-file":
        (d / "vitals.csv").write_bytes(b"")
    target = tmp_path / "nowhere" if case == "no-dir" else d
    started = time.monotonic()
    proc = run_cli(tmp_path, "--input", str(target))
    assert time.monotonic() - started < 20  # no JVM was started
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("load_raw: error: ")
    import re

    assert re.search(expected, lines[0]), lines[0]
    assert not (tmp_path / "untouched-data").exists()


def test_preflight_accepts_bom_and_crlf_and_lists_files(tmp_path):
    d = tmp_path / "in"
    write(d / "subscriptions.csv", [SUBS_HEADER, "u1,Basic,2024-01-01"], bom=True, eol="\r\n")
    write(d / "vitals.csv", [VITALS_HEADER], eol="\r")
    write(d / "vitals_2024-01-02.csv", [VITALS_HEADER, "x"])
    (d / "notes.txt").write_text("ignored")
    plan = loader.preflight(d)
    assert plan.names("vitals") == ["vitals.csv", "vitals_2024-01-02.csv"]
    assert plan.names("subscriptions") == ["subscriptions.csv"]
    write(d / "vitals_3.csv", [VITALS_HEADER.upper()])
    with pytest.raises(UserError, match="vitals_3.csv: header does not match"):
        loader.preflight(d)


def test_cli_help_explains_every_flag(tmp_path):
    proc = run_cli(tmp_path, "--help")
    assert proc.returncode == 0
    for word in ("--input", "--quiet", "raw.quarantine", VITALS_HEADER, "exit codes"):
        assert word in proc.stdout
    usage = run_cli(tmp_path)
    assert usage.returncode == 2 and "--input" in usage.stderr


# --------------------------------------------------------------------------
# Details
# --------------------------------------------------------------------------


def test_timestamp_and_date_checks_agree_with_try_to_timestamp(spark):
    """The loader validates with a shape regex + cast (faster); it must give
    what try_to_timestamp/try_to_date with the contract formats give, except
    that shapes other than the format are refused."""
    import re

    from pyspark.sql import functions as F

    values = [
        "2024-01-05 10:00:00", "2024-02-29 23:59:59", "2023-02-29 10:00:00", "2024-02-30 10:00:00",
        "2024-04-31 00:00:00", "2024-13-01 00:00:00", "2024-00-10 00:00:00", "2024-01-00 00:00:00",
        "2024-01-05 24:00:00", "2024-01-05 23:60:00", "2024-01-05 23:59:60", "1582-10-10 00:00:00",
        "9999-12-31 23:59:59", "+12024-01-05 10:00:00", "2024-01-05 10:00", "2024-1-5 10:00:00",
        "2024-01-05", "2024-02-30", "2023-02-29", "2024-12-31", "2024-1-05", "20240105", "2024-01-05Z",
    ]
    ts, _ = parsing._typed_column(F.col("v"), contract.Column("v", "timestamp"), [])
    date, _ = parsing._typed_column(F.col("v"), contract.Column("v", "date"), [])
    got = spark.createDataFrame([(v,) for v in values], "v string").select(
        "v",
        ts.cast("string"),
        F.try_to_timestamp("v", F.lit(contract.TIMESTAMP_FORMAT)).cast("string"),
        date.cast("string"),
        F.try_to_date("v", contract.DATE_FORMAT).cast("string"),
    )
    checked = 0
    for v, mine_ts, ref_ts, mine_d, ref_d in got.collect():
        assert mine_ts == (ref_ts if re.fullmatch(layout.TIMESTAMP_RE.strip("^$"), v) else None), v
        assert mine_d == (ref_d if re.fullmatch(layout.DATE_RE.strip("^$"), v) else None), v
        checked += 1
    assert checked == len(values)


def test_a_target_with_another_schema_is_a_user_error(spark, tmp_path):
    d = landing(tmp_path / "in", {"vitals.csv": ["u1,A,B,d1,2024-01-01 10:00:00,70"]})
    spark.sql("CREATE TABLE raw.subscriptions (user_id string) USING parquet")
    with pytest.raises(UserError, match="raw.subscriptions exists with another schema"):
        loader.load_raw(spark, d)
    assert leftovers(spark) == []


def test_cli_reports_an_unexpected_error_in_one_line(spark, tmp_path, monkeypatch, capsys):
    load_raw = load_script("load_raw")

    d = landing(tmp_path / "in", {"vitals.csv": ["u1,A,B,d1,2024-01-01 10:00:00,70"]})

    def boom(*_args, **_kwargs):
        raise RuntimeError("An error occurred while calling o42.sql.\n\tat org.apache.spark.Foo(Foo.java:1)")

    monkeypatch.setattr(loader, "load_raw", boom)
    assert load_raw.main(["--input", str(d), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err == "load_raw: error: unexpected failure: RuntimeError: An error occurred while calling o42.sql.\n"


def test_file_names_with_special_characters(spark, tmp_path):
    """Spark reads paths as globs and reports URIs: names must survive both."""
    names = ["vitals 1.csv", "vitals[2]{x}*?.csv", "vitals+%41é.csv", "vitals,a;b=c#d.csv", "vitals\\.csv"]
    d = landing(tmp_path / "in", {n: [f"u{i},A,B,d{i},2024-01-01 10:00:00,{i}", "bad"] for i, n in enumerate(names)})
    result = loader.load_raw(spark, d)
    assert rows(spark, "raw.vitals", "_source_file", "heart_rate", "_source_line") == sorted(
        (n, i, 2) for i, n in enumerate(names)
    )
    assert rows(spark, "raw.quarantine", "source_file", "line_number") == sorted((n, 3) for n in names)
    assert sorted(f.file for f in result["vitals"].files) == sorted(names)
    loader.load_raw(spark, d)  # idempotent by name
    assert spark.table("raw.vitals").count() == len(names)
    write(d / "vitals_10:00.csv", [VITALS_HEADER])
    with pytest.raises(UserError, match="vitals_10:00.csv: Spark cannot read a file name with ':'"):
        loader.preflight(d)


def test_rfc4180_round_trip_of_random_fields(spark, tmp_path):
    """Whatever Python's csv module writes (minimal or full quoting, doubled
    quotes) loads back exactly."""
    import csv
    import io
    import random

    rng = random.Random(4180)
    alphabet = ['"', ",", "'", "\\", " ", "a", "Z", "é", "ł", "ü", ";", "\t", "x", "-"]

    def field() -> str:
        while True:
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
            if text.strip():  # required fields: not blank
                return text

    expected = []
    buffer = io.StringIO()
    minimal = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    everything = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
    minimal.writerow(contract.VITALS.header)
    for i in range(400):
        row = [f"u{i}", field(), field(), field(), "2024-01-01 10:00:00", str(i)]
        (everything if i % 3 == 0 else minimal).writerow(row)
        expected.append((row[0], row[1], row[2], row[3], i))
    d = tmp_path / "in"
    landing(d, {})
    (d / "vitals.csv").write_text(buffer.getvalue(), encoding="utf-8")

    result = loader.load_raw(spark, d)

    assert result["vitals"].quarantined == 0, rows(spark, "raw.quarantine", "reason", "raw_line")[:5]
    assert rows(spark, "raw.vitals", "user_id", "full_name", "city", "device_id", "heart_rate") == sorted(expected)


# --------------------------------------------------------------------------
# users.csv and events*.jsonl
# --------------------------------------------------------------------------

USERS_HEADER = ",".join(contract.USERS.header)
USER_OK = ("u1,Ann Lee,ann.lee@gmail.com,+33 6 12 34 56 78,1980-05-17,female,1 rue X,75001,Paris,FR,"
           "2a01:cb00::1,280057512345678,2024-01-01 10:00:00,2024-06-01 08:00:00,active,Premium,123.40,true,")


def user_line(**changes: str) -> str:
    values = dict(zip(contract.USERS.header, USER_OK.split(",")))
    values.update(changes)
    return ",".join(values[c] for c in contract.USERS.header)


def event(**fields) -> str:
    import json

    base = {"event_id": "e1", "user_id": "u1", "session_id": "s1", "event_type": "page_view",
            "event_ts": "2024-01-02 10:00:00", "device_type": "mobile", "browser": "Chrome",
            "page": "/", "referrer": None, "ip_address": "1.2.3.4"}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...}, ensure_ascii=False)


def test_users_and_events_load_with_exact_types(spark, tmp_path):
    d = landing(tmp_path / "in", {"vitals.csv": ["u1,A,B,d1,2024-01-01 10:00:00,70"]})
    write(d / "users.csv", [USERS_HEADER, USER_OK,
                            user_line(user_id="u2", last_login_at="", subscription_tier="",
                                      consent_analytics="false", full_name='"Lee, Bo"',
                                      ip_address="10.0.0.1", lifetime_value_eur="-5")])
    write(d / "events.jsonl", [
        event(),
        event(event_id="e2", event_type="purchase", amount_eur=19.99, referrer="https://x.y/",
              event_ts="2024-01-03 00:00:01", page="/checkout/confirm"),
        event(event_id="e3", browser="SantéFlux App", amount_eur=None),
    ])
    result = loader.load_raw(spark, d)
    assert [(f.name, f.dataType.simpleString()) for f in spark.table("raw.users").schema] == [
        ("user_id", "string"), ("full_name", "string"), ("email", "string"), ("phone", "string"),
        ("date_of_birth", "date"), ("gender", "string"), ("street_address", "string"),
        ("postcode", "string"), ("city", "string"), ("country", "string"), ("ip_address", "string"),
        ("national_id", "string"), ("created_at", "timestamp"), ("last_login_at", "timestamp"),
        ("account_status", "string"), ("subscription_tier", "string"),
        ("lifetime_value_eur", "decimal(12,2)"), ("consent_analytics", "boolean"), ("tenant_id", "string"),
        ("_source_file", "string"), ("_source_line", "bigint"), ("_loaded_at", "timestamp"),
    ]
    assert [(f.name, f.dataType.simpleString()) for f in spark.table("raw.events").schema] == [
        ("event_id", "string"), ("user_id", "string"), ("session_id", "string"),
        ("event_type", "string"), ("event_ts", "timestamp"), ("device_type", "string"),
        ("browser", "string"), ("page", "string"), ("referrer", "string"), ("ip_address", "string"),
        ("amount_eur", "decimal(10,2)"), ("_source_file", "string"), ("_source_line", "bigint"),
        ("_loaded_at", "timestamp"), ("event_date", "date"),
    ]
    import decimal

    assert rows(spark, "raw.users", "user_id", "full_name", "date_of_birth", "last_login_at is null",
                "subscription_tier", "lifetime_value_eur", "consent_analytics", "_source_line") == [
        ("u1", "Ann Lee", dt.date(1980, 5, 17), False, "Premium", decimal.Decimal("123.40"), True, 2),
        ("u2", "Lee, Bo", dt.date(1980, 5, 17), True, None, decimal.Decimal("-5.00"), False, 3),
    ]
    assert rows(spark, "raw.events", "event_id", "event_type", "amount_eur", "referrer", "browser",
                "event_date", "_source_line") == [
        ("e1", "page_view", None, None, "Chrome", dt.date(2024, 1, 2), 1),
        ("e2", "purchase", decimal.Decimal("19.99"), "https://x.y/", "Chrome", dt.date(2024, 1, 3), 2),
        ("e3", "page_view", None, None, "SantéFlux App", dt.date(2024, 1, 2), 3),
    ]
    assert (result["users"].read, result["users"].loaded) == (2, 2)
    assert (result["events"].read, result["events"].loaded) == (3, 3)
    assert sorted(r[0] for r in spark.sql("SHOW PARTITIONS raw.events").collect()) == [
        "event_date=2024-01-02", "event_date=2024-01-03"]
    assert rows(spark, "raw.quarantine") == []


def test_bad_users_and_events_are_quarantined_with_reasons(spark, tmp_path):
    d = landing(tmp_path / "in", {"vitals.csv": ["u1,A,B,d1,2024-01-01 10:00:00,70"]})
    bad_users = [
        (user_line(user_id="u3", consent_analytics="yes"), "unparseable consent_analytics"),
        (user_line(user_id="u4", date_of_birth="1987-02-30"), "unparseable date_of_birth"),
        (user_line(user_id="u5", date_of_birth="2091-05-17"), "implausible date_of_birth"),
        (user_line(user_id="u6", email=""), "missing email"),
        (user_line(user_id="u7", gender="F"), "unknown gender"),
        (user_line(user_id="u8", created_at="2024-03-01T10:00:00Z"), "unparseable created_at"),
        (user_line(user_id="u9", account_status="gone"), "unknown account_status"),
        (user_line(user_id="u10", subscription_tier="Gold"), "unknown subscription_tier"),
        (user_line(user_id="u11", lifetime_value_eur="1e3"), "unparseable lifetime_value_eur"),
        (user_line(user_id="u12", country="fr"), "unparseable country"),
        (user_line(email="other@x.eu"), "duplicate user_id (first at users.csv line 2)"),
        ("u13,too,few", "wrong field count: 3, expected 19"),
    ]
    write(d / "users.csv", [USERS_HEADER, USER_OK, *(line for line, _ in bad_users)])
    bad_events = [
        ('{"event_id":"b1","user_id":"u1"', "malformed JSON (one object per line)"),
        ('["not", "an", "object"]', "malformed JSON (one object per line)"),
        ("", "blank line"),
        (event(event_id="b2", user_id=...), "missing user_id"),
        (event(event_id="b3", event_ts="2024-01-02T10:00:00Z"), "unparseable event_ts"),
        (event(event_id="b4", event_type="pageview"), "unknown event_type"),
        (event(event_id="b5", amount_eur=5.0), "amount_eur on a non-purchase event"),
        (event(event_id="b6", event_type="purchase"), "missing amount_eur on a purchase"),
        (event(event_id="b7", event_type="purchase", amount_eur=-1), "amount_eur not positive"),
        (event(event_id="b8", amount_eur="x"), "unparseable amount_eur"),
        (event(event_id="b9", extra=1), "unknown field: extra"),
        ('{"event_id":"b10","event_id":"b11"}', "repeated field"),
        (event(device_type="phone", event_id="b12"), "unknown device_type"),
        (event(page="/other"), "duplicate event_id (first at events_a.jsonl line 1)"),
    ]
    write(d / "events_a.jsonl", [event(), *(line for line, _ in bad_events)])
    write(d / "events_b.jsonl", [event(event_id="e9"), event(event_ts="2024-01-05 00:00:00")])

    result = loader.load_raw(spark, d)

    expected = [("users", "users.csv", i + 3, reason, line) for i, (line, reason) in enumerate(bad_users)]
    expected += [("events", "events_a.jsonl", i + 2, reason, line) for i, (line, reason) in enumerate(bad_events)]
    expected.append(("events", "events_b.jsonl", 2, "duplicate event_id (first at events_a.jsonl line 1)",
                     event(event_ts="2024-01-05 00:00:00")))
    got = rows(spark, "raw.quarantine", "dataset", "source_file", "line_number", "reason", "raw_line")
    assert [g for g in got if g[0] in ("users", "events")] == sorted(expected)
    assert rows(spark, "raw.users", "user_id", "email") == [("u1", "ann.lee@gmail.com")]
    assert rows(spark, "raw.events", "event_id", "_source_file", "_source_line") == [
        ("e1", "events_a.jsonl", 1), ("e9", "events_b.jsonl", 1)]
    for name in ("users", "events"):
        assert all(f.balanced for f in result[name].files)
    assert result["events"].file("events_a.jsonl").read == len(bad_events) + 1
    assert result["users"].quarantined == len(bad_users)


def test_tenant_ids_are_loaded_checked_and_quarantined_never_dropped(spark, tmp_path):
    d = landing(tmp_path / "in", {"vitals.csv": ["u1,A,B,d1,2024-01-01 10:00:00,70"]})
    good = [user_line(user_id="u2", tenant_id="acme-works"), user_line(user_id="u3", tenant_id="leman.health"),
            user_line(user_id="u4", tenant_id="A" + "b_" * 21)]
    bad = [
        (user_line(user_id="u5", tenant_id="Acme Works"), "unparseable tenant_id"),
        (user_line(user_id="u6", tenant_id="acme/hr"), "unparseable tenant_id"),
        (user_line(user_id="u7", tenant_id="-acme"), "unparseable tenant_id"),
        (user_line(user_id="u8", tenant_id="t" * 65), "unparseable tenant_id"),
        (user_line(user_id="u9", tenant_id="acme' OR '1'='1"), "unparseable tenant_id"),
        (user_line(user_id="u10", tenant_id="acme").rsplit(",", 1)[0], "wrong field count: 18, expected 19"),
    ]
    write(d / "users.csv", [USERS_HEADER, USER_OK, *good, *(line for line, _ in bad)])
    result = loader.load_raw(spark, d)
    assert rows(spark, "raw.users", "user_id", "tenant_id") == sorted([
        ("u1", None), ("u2", "acme-works"), ("u3", "leman.health"), ("u4", "A" + "b_" * 21)])
    expected = [("users", "users.csv", i + 6, reason, line) for i, (line, reason) in enumerate(bad)]
    got = rows(spark, "raw.quarantine", "dataset", "source_file", "line_number", "reason", "raw_line")
    assert [g for g in got if g[0] == "users"] == sorted(expected)
    assert (result["users"].read, result["users"].loaded, result["users"].quarantined) == (10, 4, 6)


def test_a_users_file_without_the_tenant_column_still_loads(spark, tmp_path):
    """users.csv of before tenants: its own header decides, every member is
    a direct consumer, and a line carrying a tenant there is quarantined."""
    legacy_header = ",".join(contract.USERS.header[:-1])
    assert contract.USERS.headers == (contract.USERS.header, contract.USERS.header[:-1])
    d = landing(tmp_path / "in", {"vitals.csv": ["u1,A,B,d1,2024-01-01 10:00:00,70"]})
    legacy = USER_OK.rsplit(",", 1)[0]
    write(d / "users.csv", [legacy_header, legacy, user_line(user_id="u2").rsplit(",", 1)[0],
                            user_line(user_id="u3", tenant_id="acme")], bom=True)
    result = loader.load_raw(spark, d)
    assert rows(spark, "raw.users", "user_id", "tenant_id", "consent_analytics") == [
        ("u1", None, True), ("u2", None, True)]
    got = rows(spark, "raw.quarantine", "dataset", "line_number", "reason")
    assert [g for g in got if g[0] == "users"] == [("users", 4, "wrong field count: 19, expected 18")]
    assert (result["users"].read, result["users"].loaded) == (3, 2)
    # Any other header is still refused before Spark.
    write(d / "users.csv", [legacy_header + ",tenant", legacy])
    with pytest.raises(UserError, match="users.csv: header does not match the users contract"):
        loader.preflight(d)


def test_a_duplicate_of_an_earlier_load_is_quarantined_and_reload_is_idempotent(spark, tmp_path):
    day1 = landing(tmp_path / "d1", {"vitals.csv": ["u1,A,B,d1,2024-01-01 10:00:00,70"]})
    write(day1 / "events_2024-01-02.jsonl", [event(), event(event_id="e2")])
    day2 = landing(tmp_path / "d2", {"vitals_2.csv": ["u1,A,B,d1,2024-01-03 10:00:00,70"]})
    write(day2 / "events_2024-01-03.jsonl", [event(event_id="e3", event_ts="2024-01-03 09:00:00"),
                                             event(event_id="e2", event_ts="2024-01-03 09:00:00")])
    loader.load_raw(spark, day1)
    loader.load_raw(spark, day2)
    loader.load_raw(spark, day2)  # again: idempotent, and e2 is still the first one's
    assert rows(spark, "raw.events", "event_id", "_source_file") == [
        ("e1", "events_2024-01-02.jsonl"), ("e2", "events_2024-01-02.jsonl"),
        ("e3", "events_2024-01-03.jsonl")]
    assert rows(spark, "raw.quarantine", "source_file", "line_number", "reason") == [
        ("events_2024-01-03.jsonl", 2, "duplicate event_id (first at events_2024-01-02.jsonl line 2)")]


def test_generated_landing_reconciles_with_the_manifest_and_reloads_identically(spark, tmp_path):
    import json

    from sflux.generate import config as gen
    from sflux.generate import run

    out = tmp_path / "gen"
    config = gen.GeneratorConfig(out=out, users=120, days=2, seed=3, split="day", cities=5,
                                 bad_user_rate=0.1, duplicate_user_rate=0.05, bad_event_rate=0.02,
                                 duplicate_event_rate=0.02, events_per_user_day=10.0,
                                 consent_change_rate=0.4, bad_consent_rate=0.2, quiet=True)
    manifest = run.generate(config, progress=False).manifest
    first = loader.load_raw(spark, out)
    faults = manifest["faults"]
    assert first["users"].read == manifest["counts"]["user_rows"]
    assert first["users"].quarantined == faults["bad_user_rows"] + faults["duplicate_user_rows"] > 0
    assert first["events"].read == manifest["counts"]["event_lines"]
    assert first["events"].quarantined == faults["bad_event_lines"] + faults["duplicate_event_lines"] > 0
    assert first["consent_events"].read == manifest["counts"]["consent_event_lines"]
    assert first["consent_events"].quarantined == faults["bad_consent_lines"] > 0
    assert spark.table("raw.users").select("user_id").distinct().count() == spark.table("raw.users").count()
    assert spark.table("raw.events").select("event_id").distinct().count() == first["events"].loaded
    reasons = {r[0]: r[1] for r in spark.sql(
        "select regexp_replace(reason, ' \\\\(first at .*', ''), count(*) from raw.quarantine "
        "where dataset = 'events' group by 1").collect()}
    kinds = manifest["fault_kinds"]["events"]
    assert reasons.get("duplicate event_id", 0) == faults["duplicate_event_lines"]
    assert reasons.get("malformed JSON (one object per line)", 0) == kinds["malformed_json"]
    assert reasons.get("missing user_id", 0) == kinds["missing_user_id"]
    assert reasons.get("unparseable event_ts", 0) == kinds["bad_event_ts"]
    assert reasons.get("unknown event_type", 0) == kinds["unknown_event_type"]
    assert reasons.get("amount_eur on a non-purchase event", 0) == kinds["amount_on_non_purchase"]
    assert reasons.get("missing amount_eur on a purchase", 0) == kinds["missing_amount_on_purchase"]
    # Every loaded event belongs to a user of users.csv.
    users_in_file = {line.split(",", 1)[0].strip('"') for line in
                     (out / "users.csv").read_text(encoding="utf-8").splitlines()[1:]}
    event_users = {r[0] for r in spark.sql("select distinct user_id from raw.events").collect()}
    assert event_users <= users_in_file
    before = {t: rows(spark, t, *[c for c in spark.table(t).columns if "loaded_at" not in c])
              for t in ("raw.users", "raw.events", "raw.consent_events", "raw.quarantine")}
    second = loader.load_raw(spark, out)
    after = {t: rows(spark, t, *[c for c in spark.table(t).columns if "loaded_at" not in c])
             for t in ("raw.users", "raw.events", "raw.consent_events", "raw.quarantine")}
    assert after == before and second.datasets == first.datasets
    assert json.loads((out / "generation_manifest.json").read_text(encoding="utf-8")) == manifest


# --------------------------------------------------------------------------
# consent_events*.csv
# --------------------------------------------------------------------------

CONSENT_HEADER = "user_id,consent_type,action,event_ts"
CONSENT_DUPLICATE = "duplicate (user_id, consent_type, action, event_ts) (first at {} line {})"


def test_consent_events_load_typed_and_bad_rows_are_quarantined(spark, tmp_path):
    d = landing(tmp_path / "in", {"vitals.csv": ["u1,A,B,d1,2024-01-01 10:00:00,70"]})
    bad = [
        ("u3,analytics,revoke,2024-01-02 10:00:00", "unknown action"),
        ("u3,analytics,WITHDRAW,2024-01-02 10:00:00", "unknown action"),
        ("u3,marketing,grant,2024-01-02 10:00:00", "unknown consent_type"),
        ("u3,analytics,grant,2024-01-02T10:00:00Z", "unparseable event_ts"),
        ("u3,analytics,grant,2024-02-30 10:00:00", "unparseable event_ts"),
        (",analytics,grant,2024-01-02 10:00:00", "missing user_id"),
        ("u3,analytics,,2024-01-02 10:00:00", "missing action"),
        ("u3,analytics,grant", "wrong field count: 3, expected 4"),
        ("u3,analytics,grant,2024-01-02 10:00:00,x", "wrong field count: 5, expected 4"),
        ("u1,analytics,withdraw,2024-01-02 10:00:00", CONSENT_DUPLICATE.format("consent_events.csv", 2)),
    ]
    write(d / "consent_events.csv", [
        CONSENT_HEADER, "u1,analytics,withdraw,2024-01-02 10:00:00", *(line for line, _ in bad),
        "u1,analytics,grant,2024-01-02 10:00:00",  # same time, other action: not a duplicate
        '"u,2",analytics,grant,2024-01-03 00:00:01',
    ])
    write(d / "consent_events_b.csv", [
        CONSENT_HEADER, "u1,analytics,withdraw,2024-01-02 10:00:00", "u1,analytics,withdraw,2024-01-04 10:00:00"])

    result = loader.load_raw(spark, d)

    assert [(f.name, f.dataType.simpleString()) for f in spark.table("raw.consent_events").schema] == [
        ("user_id", "string"), ("consent_type", "string"), ("action", "string"),
        ("event_ts", "timestamp"), ("_source_file", "string"), ("_source_line", "bigint"),
        ("_loaded_at", "timestamp"),
    ]
    assert spark.sql("SHOW CREATE TABLE raw.consent_events").first()[0].count("PARTITIONED") == 0
    assert rows(spark, "raw.consent_events", "user_id", "consent_type", "action",
                f"date_format(event_ts, '{TS_FORMAT}')", "_source_file", "_source_line") == [
        ("u,2", "analytics", "grant", "2024-01-03 00:00:01.000000", "consent_events.csv", len(bad) + 4),
        ("u1", "analytics", "grant", "2024-01-02 10:00:00.000000", "consent_events.csv", len(bad) + 3),
        ("u1", "analytics", "withdraw", "2024-01-02 10:00:00.000000", "consent_events.csv", 2),
        ("u1", "analytics", "withdraw", "2024-01-04 10:00:00.000000", "consent_events_b.csv", 3),
    ]
    expected = [("consent_events.csv", i + 3, reason, line) for i, (line, reason) in enumerate(bad)]
    expected.append(("consent_events_b.csv", 2, CONSENT_DUPLICATE.format("consent_events.csv", 2),
                     "u1,analytics,withdraw,2024-01-02 10:00:00"))
    assert rows(spark, "raw.quarantine", "source_file", "line_number", "reason", "raw_line") == sorted(expected)
    assert {r[0] for r in spark.sql("select distinct dataset from raw.quarantine").collect()} == {"consent_events"}
    counts = result["consent_events"]
    assert (counts.read, counts.loaded, counts.quarantined) == (len(bad) + 5, 4, len(bad) + 1)
    assert all(f.balanced for f in counts.files)
    assert "consent_events_b.csv" in "\n".join(results.format_report(result))


def test_consent_events_dated_in_the_future_are_quarantined(spark, tmp_path):
    """A grant dated 2099 would be the latest event, and so override every
    real withdrawal until 2099: a consent event later than the load time plus
    the clock-skew tolerance is quarantined with the reason. A sender's clock a
    minute ahead is tolerated."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)

    def stamp(moment: dt.datetime) -> str:
        return moment.strftime("%Y-%m-%d %H:%M:%S")

    tolerance = contract.clock_skew_tolerance()
    assert dt.timedelta(minutes=1) < tolerance < dt.timedelta(hours=1)
    future = f"event_ts in the future (later than the load time + {tolerance.seconds // 60} min clock skew)"
    d = landing(tmp_path / "in", {"vitals.csv": ["u1,A,B,d1,2024-01-01 10:00:00,70"]})
    lines = [
        "u1,analytics,grant,2099-01-01 00:00:00",
        f"u1,analytics,withdraw,{stamp(now - dt.timedelta(hours=1))}",
        f"u2,analytics,grant,{stamp(now + dt.timedelta(minutes=1))}",
        f"u3,analytics,withdraw,{stamp(now + dt.timedelta(hours=1))}",
        "u4,analytics,revoke,2099-01-01 00:00:00",
    ]
    write(d / "consent_events.csv", [CONSENT_HEADER, *lines])

    result = loader.load_raw(spark, d)

    assert result.loaded_at >= now
    assert rows(spark, "raw.consent_events", "user_id", "action") == [("u1", "withdraw"), ("u2", "grant")]
    assert rows(spark, "raw.quarantine", "line_number", "reason", "raw_line") == [
        (2, future, lines[0]),
        (5, future, lines[3]),
        (6, "unknown action", lines[4]),  # row rules only judge rows whose fields parsed
    ]
    counts = result["consent_events"]
    assert (counts.read, counts.loaded, counts.quarantined) == (5, 2, 3)


def test_consent_events_are_optional_and_reload_idempotently(spark, tmp_path):
    bare = landing(tmp_path / "bare", {"vitals.csv": ["u1,A,B,d1,2024-01-01 10:00:00,70"]})
    result = loader.load_raw(spark, bare)
    assert result["consent_events"].files == ()
    assert spark.table("raw.consent_events").count() == 0  # created, empty

    d = landing(tmp_path / "in", {"vitals.csv": ["u1,A,B,d1,2024-01-01 10:00:00,70"]})
    write(d / "consent_events.csv", [CONSENT_HEADER, "u1,analytics,withdraw,2024-01-02 10:00:00",
                                     "u1,analytics,withdraw,2024-01-02 10:00:00", "u2,analytics,maybe,x"])
    write(tmp_path / "d2" / "consent_events_2024-01-05.csv",
          [CONSENT_HEADER, "u1,analytics,withdraw,2024-01-02 10:00:00", "u1,analytics,grant,2024-01-05 08:00:00"])
    landing(tmp_path / "d2", {"vitals_2.csv": ["u1,A,B,d1,2024-01-05 10:00:00,70"]})

    def state():
        return {t: rows(spark, t, *[c for c in spark.table(t).columns if "loaded_at" not in c])
                for t in ("raw.consent_events", "raw.quarantine")}

    first = loader.load_raw(spark, d)
    loader.load_raw(spark, tmp_path / "d2")
    before = state()
    again = loader.load_raw(spark, d)
    loader.load_raw(spark, tmp_path / "d2")
    assert state() == before and again.datasets == first.datasets
    assert rows(spark, "raw.consent_events", "user_id", "action", "_source_file") == [
        ("u1", "grant", "consent_events_2024-01-05.csv"), ("u1", "withdraw", "consent_events.csv")]
    assert rows(spark, "raw.quarantine", "source_file", "line_number", "reason") == [
        ("consent_events.csv", 3, CONSENT_DUPLICATE.format("consent_events.csv", 2)),
        ("consent_events.csv", 4, "unknown action; unparseable event_ts"),
        ("consent_events_2024-01-05.csv", 2, CONSENT_DUPLICATE.format("consent_events.csv", 2)),
    ]
    # A load without consent files leaves the table as it was.
    loader.load_raw(spark, bare)
    assert state() == before


# --------------------------------------------------------------------------
# Erased subjects (raw.erasure_register, written by scripts/gdpr.py)
# --------------------------------------------------------------------------


def pseudonym(key: str, user_id: str) -> str:
    import hashlib
    import hmac

    return hmac.new(key.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def create_register(spark, *pseudonyms: str) -> None:
    """The register gdpr.py writes (the columns the loader reads), and the
    key registry a dbt build writes: the loader checks its key against it."""
    from conftest import TEST_KEY

    spark.sql(f"create table if not exists {keys.REGISTRY_TABLE} (key_version int, key_fingerprint string,"
              " registered_at timestamp, dbt_invocation_id string) using parquet")
    spark.sql(f"insert into {keys.REGISTRY_TABLE} select 1, :f, current_timestamp(), 'pytest'",
              args={"f": keys.fingerprint(TEST_KEY)})
    spark.sql("create table raw.erasure_register (subject_pseudonym_id string, status string, "
              "recorded_at timestamp) using parquet")
    for value in pseudonyms:
        spark.sql("insert into raw.erasure_register select :p, 'complete', current_timestamp()",
                  args={"p": value})


def every_dataset(directory: Path) -> Path:
    """u1 (to be erased) and u2 in all five datasets, u1 with bad lines too."""
    landing(directory, {
        "vitals.csv": ["u1,Ann,Paris,d1,2024-01-01 10:00:00,70", "u2,Bo,Lyon,d2,2024-01-01 10:00:00,60",
                       "u1,Ann,Paris,d1,2024-01-01 10:01:00,oops"],
        "vitals_b.csv": ["u1,Ann,Paris,d1,2024-01-02 10:00:00,71"],
    }, ["u1,Basic,2024-01-01", "u2,VIP,2024-01-01"])
    write(directory / "users.csv", [USERS_HEADER, USER_OK, user_line(user_id="u2", email="bo@x.eu"),
                                    user_line(email="dup@x.eu")])
    write(directory / "events.jsonl", [
        event(event_id="e5"),  # u1 first: skipped, so it claims no event_id
        event(event_id="e5", user_id="u2"),
        event(event_id="e6", user_id="u1", event_type="nope"),
    ])
    write(directory / "consent_events.csv", [CONSENT_HEADER, "u1,analytics,withdraw,2024-01-02 10:00:00",
                                             "u2,analytics,grant,2024-01-02 10:00:00",
                                             "u1,analytics,revoke,2024-01-02 10:00:00"])
    return directory


def test_erased_subjects_are_skipped_counted_and_never_come_back(spark, tmp_path, pseudonym_key):
    d = every_dataset(tmp_path / "in")
    loader.load_raw(spark, d)
    assert spark.sql("select count(*) from raw.vitals where user_id = 'u1'").first()[0] == 2

    create_register(spark, pseudonym(pseudonym_key, "u9"), pseudonym(pseudonym_key, "u1").upper())
    logged: list[str] = []
    result = loader.load_raw(spark, d, log=logged.append)

    for table in ("raw.subscriptions", "raw.vitals", "raw.users", "raw.events", "raw.consent_events"):
        assert spark.sql(f"select count(*) from {table} where user_id = 'u1'").first()[0] == 0, table
        assert spark.sql(f"select count(*) from {table} where user_id = 'u2'").first()[0] >= 1, table
    assert rows(spark, "raw.quarantine", "dataset", "reason", "raw_line like '%u1%'") == []
    assert rows(spark, "raw.events", "event_id", "user_id", "_source_line") == [("e5", "u2", 2)]
    assert rows(spark, "raw.vitals", "user_id", "_source_file", "_source_line") == [("u2", "vitals.csv", 3)]
    counts = {(f.dataset, f.file): (f.read, f.loaded, f.quarantined, f.skipped_erased)
              for ds in result.datasets for f in ds.files}
    assert counts == {
        ("subscriptions", "subscriptions.csv"): (2, 1, 0, 1),
        ("vitals", "vitals.csv"): (3, 1, 0, 2),
        ("vitals", "vitals_b.csv"): (1, 0, 0, 1),
        ("users", "users.csv"): (3, 1, 0, 2),
        ("events", "events.jsonl"): (3, 1, 0, 2),
        ("consent_events", "consent_events.csv"): (3, 1, 0, 2),
    }
    assert result.skipped_erased == 10 and result.erasure_register_applied
    report = results.format_report(result)
    assert "erased subjects: 10 rows skipped" in "\n".join(report)
    assert "reconciled: read 15 = loaded 5 + quarantined 0 + erased 10" in report
    assert "erased subjects: 10 rows skipped" in logged
    # Emptied partitions of the erased subject are gone, not left empty.
    assert sorted(r[0] for r in spark.sql("SHOW PARTITIONS raw.vitals").collect()) == [
        "reading_date=2024-01-01"]

    def state():
        return {t: rows(spark, t, *[c for c in spark.table(t).columns if "loaded_at" not in c])
                for t in TABLES}

    before = state()
    assert loader.load_raw(spark, d).datasets == result.datasets
    assert state() == before


def test_a_register_needs_the_key_and_fails_before_publishing(spark, tmp_path, pseudonym_key, monkeypatch):
    d = every_dataset(tmp_path / "in")
    monkeypatch.setattr(keys, "KEY_ENV", "SANTEFLUX_TEST_UNSET_KEY")
    spark.sql("create table raw.erasure_register (subject_pseudonym_id string) using parquet")
    result = loader.load_raw(spark, d)  # an empty register needs no key
    assert not result.erasure_register_applied and result.skipped_erased == 0
    assert not any("erased subjects" in line for line in results.format_report(result))
    before = snapshot(spark)
    spark.sql("drop table raw.erasure_register")
    create_register(spark, pseudonym(pseudonym_key, "u1"))
    with pytest.raises(UserError) as caught:
        loader.load_raw(spark, d)
    message = str(caught.value)
    assert "\n" not in message
    assert "needs SANTEFLUX_TEST_UNSET_KEY" in message and "to skip erased subjects" in message
    assert snapshot(spark) == before
    assert not loader.Staging(spark).exists()


def test_a_wrong_key_is_refused_before_publishing(spark, tmp_path, pseudonym_key, monkeypatch):
    """The attack: a key of valid length that is not the registered one
    computes pseudonyms that match no register entry, so the erased subject
    would be loaded again. The loader compares the key's fingerprint with
    raw.pseudonym_key_registry first."""
    from conftest import WRONG_KEY_ENV

    d = every_dataset(tmp_path / "in")
    loader.load_raw(spark, d)
    create_register(spark, pseudonym(pseudonym_key, "u1"))
    before = snapshot(spark)
    monkeypatch.setattr(keys, "KEY_ENV", WRONG_KEY_ENV)
    with pytest.raises(UserError) as caught:
        loader.load_raw(spark, d)
    message = str(caught.value)
    assert "\n" not in message and "is not the registered pseudonymization key" in message
    assert "skip erased subjects" in message
    assert snapshot(spark) == before
    assert not loader.Staging(spark).exists()
