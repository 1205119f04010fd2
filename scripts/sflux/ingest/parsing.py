"""Parsing landing files with Spark only (loader step 2): exact line numbers,
CSV and JSON Lines fields, typing per contract column, row rules, and the
quarantine of repeated keys.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sflux.ingest import contract
from sflux.ingest.erasures import mark_erased
from sflux.ingest.layout import (
    BLANK_CHARS,
    BLANK_RE,
    BOOL_VALUES,
    CORRUPT_COLUMN,
    CSV_OPTIONS,
    DATE_RE,
    INT_RE,
    csv_line_re,
    JSON_OPTIONS,
    QUOTED_FIELD_RE,
    TIMESTAMP_RE,
)

if TYPE_CHECKING:  # pyspark is imported lazily: pre-flight must stay fast
    from pyspark.sql import Column as SparkColumn
    from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
class BlockStats:
    """One split ("block") of a file as Spark read it."""

    path: str  # Spark's file URI
    file: str  # file name
    block_start: int
    min_rid: int  # smallest monotonically_increasing_id of its rows
    rows: int
    offset: int  # lines of the same file in earlier blocks

    @property
    def partition(self) -> int:
        return self.min_rid >> 33


def _spark_path(path: Path) -> str:
    # Spark treats read paths as Hadoop globs: escape the glob characters.
    return "".join("\\" + c if c in "{}[]*?\\" else c for c in str(path))


def _uri_name(uri: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlparse(uri).path).rsplit("/", 1)[-1]


def number_lines(
    spark: SparkSession, files: Sequence[Path]
) -> tuple[DataFrame, list[BlockStats]]:
    """All lines of ``files`` with their file name and exact 1-based line
    number, computed natively.

    Spark reads a file as one or more blocks (splits); each block's rows are
    contiguous inside one partition, so ``monotonically_increasing_id()``
    (partition << 33 | row index in partition) numbers them consecutively. A
    tiny aggregate per block (min id, row count) plus a running sum over the
    blocks of a file give line = offset + (id - min id) + 1. The aggregate is
    collected (one row per block) and broadcast back. Both scans split the
    files identically, so the ids agree; the reconciliation would catch it if
    they did not.

    Returns a DataFrame (value, _source_file, _source_line) and the blocks.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    lines = spark.read.text([_spark_path(p) for p in files]).select(
        F.col("value"),
        F.col("_metadata.file_path").alias("_path"),
        F.col("_metadata.file_block_start").alias("_block"),
        F.monotonically_increasing_id().alias("_rid"),
    )
    earlier = (
        Window.partitionBy("_path")
        .orderBy("_block")
        .rowsBetween(Window.unboundedPreceding, -1)
    )
    block_rows = (
        lines.groupBy("_path", "_block")
        .agg(F.min("_rid").alias("_min_rid"), F.count(F.lit(1)).alias("_rows"))
        .withColumn("_offset", F.coalesce(F.sum("_rows").over(earlier), F.lit(0)))
        .collect()
    )
    names = {p.name for p in files}
    blocks = []
    for r in block_rows:
        name = _uri_name(r["_path"])
        if name not in names:
            raise RuntimeError(f"Spark read an unexpected file {r['_path']}")
        blocks.append(
            BlockStats(
                r["_path"], name, r["_block"], r["_min_rid"], r["_rows"], int(r["_offset"])
            )
        )
    blocks.sort(key=lambda b: (b.file, b.block_start))
    # A literal table (one row per block), evaluated in the JVM.
    block_df = spark.range(1).select(
        F.inline(
            F.array(
                *[
                    F.struct(
                        F.lit(b.path).alias("_path"),
                        F.lit(b.block_start).cast("bigint").alias("_block"),
                        F.lit(b.file).alias("_source_file"),
                        F.lit(b.offset - b.min_rid + 1).cast("bigint").alias("_base"),
                    )
                    for b in blocks
                ]
            )
        )
    )
    numbered = lines.join(F.broadcast(block_df), ["_path", "_block"]).select(
        F.col("value"),
        F.col("_source_file"),
        (F.col("_base") + F.col("_rid")).alias("_source_line"),
    )
    return numbered, blocks


def lines_read(blocks: Iterable[BlockStats], header_lines: int = 1) -> dict[str, int]:
    """Data lines (``header_lines`` excluded) per file name."""
    total: dict[str, int] = {}
    for b in blocks:
        total[b.file] = total.get(b.file, 0) + b.rows
    return {name: max(n - header_lines, 0) for name, n in total.items()}


# --------------------------------------------------------------------------
# Parsing and typing
# --------------------------------------------------------------------------


def _typed_column(
    field: SparkColumn, column: contract.Column, tiers: Sequence[str]
) -> tuple[SparkColumn, SparkColumn]:
    """(typed value, reason or NULL) for one field."""
    from pyspark.sql import functions as F

    missing = field.isNull() | (F.length(F.btrim(field, F.lit(BLANK_CHARS))) == 0)
    if column.kind in ("string", "tier", "enum"):
        value = field
        if column.kind in ("tier", "enum"):
            accepted = list(tiers) if column.kind == "tier" else list(column.values)
            value = F.when(field.isin(accepted), field)
            bad = F.when(~missing & value.isNull(), F.lit(f"unknown {column.name}"))
        elif column.pattern is not None:
            value = F.when(field.rlike(column.pattern), field)
            bad = F.when(~missing & value.isNull(), F.lit(f"unparseable {column.name}"))
        else:
            bad = F.lit(None)
    elif column.kind == "bool":
        value = F.when(field.isin(*BOOL_VALUES), field == F.lit("true"))
        bad = F.when(~missing & value.isNull(), F.lit(f"unparseable {column.name}"))
    elif column.kind.startswith("decimal("):
        precision, scale = (int(x) for x in column.kind[8:-1].split(","))
        shape = rf"^-?[0-9]{{1,{precision - scale}}}(\.[0-9]{{1,{scale}}})?$"
        value = F.when(field.rlike(shape), field.cast(column.kind))
        bad = F.when(~missing & value.isNull(), F.lit(f"unparseable {column.name}"))
    elif column.kind in ("timestamp", "date"):
        # The regex pins contract.TIMESTAMP_FORMAT / DATE_FORMAT exactly; a
        # cast then validates the calendar (2024-02-30, 24:00:00 -> NULL) like
        # try_to_timestamp(x, format) / try_to_date(x, format), ~3x faster
        # (tests/python/ingest/test_loader.py checks they agree).
        shape = TIMESTAMP_RE if column.kind == "timestamp" else DATE_RE
        value = F.when(field.rlike(shape), field.cast(column.kind))
        bad = F.when(~missing & value.isNull(), F.lit(f"unparseable {column.name}"))
    elif column.kind == "int":
        value = F.when(field.rlike(INT_RE), field.cast("int"))  # overflow -> NULL
        bad = F.when(~missing & value.isNull(), F.lit(f"unparseable {column.name}"))
    else:
        raise ValueError(f"unknown column kind {column.kind!r} for {column.name}")
    value = F.when(~missing, value).cast(column.spark_type)
    if column.required:
        bad = F.when(missing, F.lit(f"missing {column.name}")).otherwise(bad)
    return value, bad


def parse(
    numbered: DataFrame,
    dataset: contract.Dataset,
    tiers: Sequence[str],
    earlier: DataFrame | None = None,
    erased: DataFrame | None = None,
    *,
    loaded_at: dt.datetime,
) -> DataFrame:
    """Typed contract columns + _source_file, _source_line, _reason (NULL for
    a good row), _erased and _raw_line (the line, kept for quarantined rows
    only).

    ``earlier``: rows already in the target from other files (the unique key,
    _source_file, _source_line); with a unique key, they count as earlier
    occurrences than any row of this load.
    ``erased``: the pseudonyms of erased subjects (see :func:`erased_subjects`);
    a row of one of them has _erased true and every other column but the
    lineage NULL, so none of their data goes further, not even to the
    quarantine.
    ``loaded_at``: the load's time (UTC); a ``not_after_load`` column later
    than it plus :func:`contract.clock_skew_tolerance` quarantines the row."""
    from pyspark.sql import functions as F

    if dataset.file_format == "jsonl":
        stage1, structural = _jsonl_fields(numbered, dataset)
    elif dataset.file_format == "csv":
        stage1, structural = _csv_fields(numbered, dataset)
    else:
        raise ValueError(f"unknown file format {dataset.file_format!r} for {dataset.name}")
    typed, problems = [], []
    for column in dataset.columns:
        v, bad = _typed_column(F.col("_f").getField(column.name), column, tiers)
        typed.append(v.alias(column.name))
        problems.append(bad)
    # The problems are spelled out only for a row that has one: a good row
    # (nearly all of them) costs one null test per field, not a string.
    field_reasons = F.concat_ws("; ", *problems)
    any_problem = F.lit(False)
    for bad in problems:
        any_problem = any_problem | bad.isNotNull()
    reason = F.coalesce(structural, F.when(any_problem, field_reasons))
    stage2 = stage1.select(
        *typed, "_source_file", "_source_line", reason.alias("_reason"), "value"
    )
    rules = (*dataset.rules, *_not_after_load_rules(dataset, loaded_at))
    if rules:
        rule_reasons = F.concat_ws(
            "; ",
            *[
                F.when(~F.coalesce(F.expr(rule.valid), F.lit(False)), F.lit(rule.reason))
                for rule in rules
            ],
        )
        stage2 = stage2.withColumn(
            "_reason",
            F.coalesce(F.col("_reason"), F.when(rule_reasons != "", rule_reasons)),
        )
    if erased is not None and dataset.holds_subjects:
        stage2 = mark_erased(stage2, erased)
    else:
        stage2 = stage2.withColumn("_erased", F.lit(False))
    if dataset.unique_key:
        stage2 = _mark_duplicates(stage2, dataset.unique_key, earlier)
    kept = ~F.col("_erased")
    return stage2.select(
        *[F.when(kept, F.col(c.name)).alias(c.name) for c in dataset.columns],
        "_source_file",
        "_source_line",
        F.when(kept, F.col("_reason")).alias("_reason"),
        "_erased",
        F.when(kept & F.col("_reason").isNotNull(), F.col("value")).alias("_raw_line"),
    )


def _not_after_load_rules(dataset: contract.Dataset, loaded_at: dt.datetime) -> list[contract.RowRule]:
    """One row rule per ``not_after_load`` column: at most the load time plus
    the clock-skew tolerance. The limit is a literal in the session time zone
    (UTC, as every landed timestamp)."""
    if not dataset.not_after_load:
        return []
    tolerance = contract.clock_skew_tolerance()
    limit = (loaded_at.astimezone(dt.timezone.utc) + tolerance).strftime("%Y-%m-%d %H:%M:%S")
    minutes = int(tolerance.total_seconds() // 60)
    return [
        contract.RowRule(
            f"`{column}` <= timestamp'{limit}'",
            f"{column} in the future (later than the load time + {minutes} min clock skew)",
        )
        for column in dataset.not_after_load
    ]


def _csv_fields(numbered: DataFrame, dataset: contract.Dataset) -> tuple[DataFrame, SparkColumn]:
    """Data lines (the header is line 1) with ``_f``, the fields as strings,
    and the structural problem of the line, if any."""
    from pyspark.sql import functions as F

    ncols = len(dataset.columns)
    value = F.col("value")
    ddl = ", ".join(f"`{c.name}` STRING" for c in dataset.columns)
    stage1 = numbered.select(
        "value",
        "_source_file",
        "_source_line",
        F.from_csv(value, ddl, CSV_OPTIONS).alias("_f"),
    )
    # A line without quotes needs no quoted-field removal.
    unquoted = F.when(
        F.instr(value, '"') > 0,
        F.regexp_replace(value, F.lit(QUOTED_FIELD_RE), F.lit("$1")),
    ).otherwise(value)
    nfields = F.size(F.split(unquoted, ",", -1))
    expected_fields = F.lit(ncols)
    # One match tells a well-formed line (nearly every line) from one that
    # needs the detailed, costlier checks below to say what is wrong.
    shaped = value.rlike(csv_line_re(ncols))
    if len(dataset.headers) > 1:
        # A file whose header leaves the optional trailing columns out has
        # that many fields fewer on every line (from_csv fills them with
        # NULL); a line of a full-header file missing them is still wrong.
        from pyspark.sql import Window

        short = len(dataset.headers[1])
        short_header = ",".join(dataset.headers[1])
        first_line = F.min_by(value, F.col("_source_line")).over(Window.partitionBy("_source_file"))
        stage1 = stage1.withColumn(
            "_short_header", F.regexp_replace(first_line, "^\ufeff", "") == F.lit(short_header)
        )
        expected_fields = F.when(F.col("_short_header"), F.lit(short)).otherwise(ncols)
        shaped = F.when(F.col("_short_header"), value.rlike(csv_line_re(short))).otherwise(shaped)
    detailed = (
        F.when(value.rlike(BLANK_RE), F.lit("blank line"))
        .when(~F.is_valid_utf8(value), F.lit("invalid UTF-8"))
        .when(F.instr(unquoted, '"') > 0, F.lit("malformed quotes"))
        .when(
            nfields != expected_fields,
            F.concat(
                F.lit("wrong field count: "),
                nfields.cast("string"),
                F.lit(", expected "),
                expected_fields.cast("string"),
            ),
        )
    )
    well_formed = F.is_valid_utf8(value) & shaped
    structural = F.when(~well_formed, detailed)
    return stage1.where(F.col("_source_line") > 1), structural


def _jsonl_fields(numbered: DataFrame, dataset: contract.Dataset) -> tuple[DataFrame, SparkColumn]:
    """Every line (no header) with ``_f``, the fields as strings (a JSON
    number keeps its text), and the structural problem of the line: blank,
    not UTF-8, malformed JSON or not an object, unknown or repeated fields."""
    from pyspark.sql import functions as F

    value = F.col("value")
    ddl = ", ".join(f"`{c.name}` STRING" for c in dataset.columns)
    stage1 = numbered.select(
        "value",
        "_source_file",
        "_source_line",
        F.from_json(value, f"{ddl}, `{CORRUPT_COLUMN}` STRING", JSON_OPTIONS).alias("_f"),
        F.json_object_keys(value).alias("_keys"),
    )
    keys = F.col("_keys")
    unknown = F.array_except(keys, F.array(*[F.lit(c.name) for c in dataset.columns]))
    structural = (
        F.when(value.rlike(BLANK_RE), F.lit("blank line"))
        .when(~F.is_valid_utf8(value), F.lit("invalid UTF-8"))
        .when(
            F.col("_f").isNull() | F.col("_f").getField(CORRUPT_COLUMN).isNotNull() | keys.isNull(),
            F.lit("malformed JSON (one object per line)"),
        )
        .when(F.size(unknown) > 0, F.concat(F.lit("unknown field: "), F.array_join(unknown, ", ")))
        .when(F.size(keys) != F.size(F.array_distinct(keys)), F.lit("repeated field"))
    )
    return stage1, structural


def _mark_duplicates(
    rows: DataFrame, key: Sequence[str], earlier: DataFrame | None
) -> DataFrame:
    """Quarantine every occurrence of a key (one or more columns) after the
    first: rows in the target from other files first, then this load's by
    file name and line. Rows already quarantined for another reason, or
    skipped as erased, claim no key."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    label = key[0] if len(key) == 1 else f"({', '.join(key)})"
    claims = F.col("_reason").isNull() & ~F.col("_erased")
    new = rows.withColumn("_new", F.lit(1)).withColumn(
        "_k", F.when(claims, F.struct(*key))
    )
    union = new
    if earlier is not None:
        union = new.unionByName(
            earlier.select(
                F.struct(*key).alias("_k"), "_source_file", "_source_line", F.lit(0).alias("_new")
            ),
            allowMissingColumns=True,
        )
    w = Window.partitionBy("_k").orderBy("_new", "_source_file", "_source_line")
    first = F.first(F.struct("_source_file", "_source_line")).over(w)
    duplicate = F.when(
        F.col("_k").isNotNull() & (F.row_number().over(w) > 1),
        F.concat(
            F.lit(f"duplicate {label} (first at "),
            first.getField("_source_file"),
            F.lit(" line "),
            first.getField("_source_line").cast("string"),
            F.lit(")"),
        ),
    )
    marked = union.withColumn("_reason", F.coalesce(F.col("_reason"), duplicate))
    return marked.where(F.col("_new") == 1).drop("_new", "_k")


