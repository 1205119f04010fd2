"""The raw loader: landing files that follow the contract -> ``raw`` tables.

Usage from Python (tests reuse one session)::

    from sflux.ingest import loader
    plan = loader.preflight(Path("landing/2024-01-01"))   # plain Python, no Spark
    result = loader.load_raw(spark, plan)                  # or load_raw(spark, path)
    result["vitals"].loaded, result["vitals"].quarantined

How a load works:

1. **Pre-flight** (plain Python, before Spark is even started): the input
   directory exists, every required dataset of ``contract.DATASETS`` has at
   least one file (users, events and consent_events are optional), and
   every CSV file's first line (UTF-8, BOM stripped) is exactly the contract
   header. Any
   problem is a ``UserError`` and nothing is touched.
2. **Parse** every dataset with Spark only (no Python UDF, no per-row Python):
   each line gets its exact file name and line number (see
   :func:`number_lines`); a CSV line's fields are counted and parsed as RFC
   4180 CSV, a JSON Lines line is parsed with ``from_json`` and an explicit
   schema (malformed JSON, a non-object, unknown or repeated fields are
   refused); fields are typed per ``contract.Column.kind`` and the dataset's
   row rules checked. Where the dataset has a unique key, the first
   occurrence of a key loads and later ones are quarantined (rows already in
   the table from other files count as earlier). Each data line becomes
   either a typed row or a quarantine row with a reason; nothing is dropped,
   except the lines of erased subjects (below).
   **Erased subjects**: when ``raw.erasure_register`` (written by
   scripts/gdpr.py) holds pseudonyms, a line whose ``user_id`` pseudonymizes
   (HMAC-SHA256 with the key, as the dbt ``pseudonymize`` macro) to one of
   them is skipped: neither loaded nor quarantined (the quarantine keeps raw
   lines), only counted. Such a load needs the key (``UserError`` before
   anything is touched if it is missing); without a register or with an
   empty one, no key is needed.
   Results land in staging (parquet directories
   ``<raw schema location>/loader_staging``).
3. **Merge** in staging: the new content of every target is built next to it.
   A file is identified by its file name: its previous rows (in the dataset
   table and in ``raw.quarantine``) are replaced, other files' rows are kept.
4. **Reconcile**: per file, lines read (excluding the header) must equal rows
   loaded + rows quarantined in what is about to be published + lines
   skipped as erased subjects; otherwise
   ``ReconciliationError`` and nothing is published.
5. **Publish**: ``INSERT OVERWRITE`` of every target from staging (dynamic
   partition overwrite of the affected ``reading_date`` / ``event_date``
   partitions for vitals / events; partitions left empty are dropped). What a publish overwrites
   (whole small tables; the existing affected partitions of vitals) is backed
   up first and restored if any publish step fails, so a failed load leaves
   the previous tables as they were. Staging is removed at the end.

Restriction: a quoted field must not contain a newline (each physical line is
one record); such a record shows up as quarantined lines, never as bad data.
"""

from __future__ import annotations

import datetime as dt
import os
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sflux.ingest import contract
from sflux.core.errors import UserError

if TYPE_CHECKING:  # pyspark is imported lazily: pre-flight must stay fast
    from pyspark.sql import Column as SparkColumn
    from pyspark.sql import DataFrame, SparkSession

Log = Callable[[str], None]

STAGING_DIR = "loader_staging"
HEADER_READ_LIMIT = 64 * 1024  # bytes; a header is far shorter

# One RFC 4180 quoted field, as a whole field: starts the line or follows a
# comma, runs to the closing quote ("" is an escaped quote inside) and is
# followed by a comma or the end of the line. Possessive quantifiers: no
# backtracking, so long lines cannot blow the JVM regex stack.
QUOTED_FIELD_RE = r'(^|,)"[^"]*+(?:""[^"]*+)*+"(?=,|$)'
BLANK_RE = r"^\s*$"
INT_RE = r"^-?[0-9]+$"
# Exactly contract.TIMESTAMP_FORMAT / DATE_FORMAT (a bare cast or
# try_to_timestamp would also accept other shapes, e.g. "+12024-01-01").
TIMESTAMP_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"
DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
CSV_OPTIONS = {"quote": '"', "escape": '"', "mode": "PERMISSIVE"}
CORRUPT_COLUMN = "_corrupt_record"
JSON_OPTIONS = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_COLUMN}
BOOL_VALUES = ("true", "false")
SPARK_TYPES = contract.SPARK_TYPES
LINEAGE_COLUMNS = ("_source_file", "_source_line", "_loaded_at")
PSEUDONYM_KEY_ENV = "DBT_ENV_SECRET_PSEUDONYM_KEY"
MIN_KEY_LENGTH = 32
REGISTER_COLUMN = "subject_pseudonym_id"
QUARANTINE_COLUMNS = (
    ("dataset", "string"),
    ("source_file", "string"),
    ("line_number", "bigint"),
    ("reason", "string"),
    ("raw_line", "string"),
    ("loaded_at", "timestamp"),
)


class ReconciliationError(RuntimeError):
    """Rows read != rows loaded + rows quarantined + rows skipped as erased: a
    loader bug; nothing was published."""


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class FileCounts:
    dataset: str
    file: str
    read: int  # data lines, header excluded
    loaded: int
    quarantined: int
    skipped_erased: int = 0  # lines of erased subjects: neither loaded nor quarantined

    @property
    def balanced(self) -> bool:
        return self.read == self.loaded + self.quarantined + self.skipped_erased


@dataclass(frozen=True)
class DatasetCounts:
    dataset: str
    table: str
    files: tuple[FileCounts, ...]

    @property
    def read(self) -> int:
        return sum(f.read for f in self.files)

    @property
    def loaded(self) -> int:
        return sum(f.loaded for f in self.files)

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self.files)

    @property
    def skipped_erased(self) -> int:
        return sum(f.skipped_erased for f in self.files)

    def file(self, name: str) -> FileCounts:
        for counts in self.files:
            if counts.file == name:
                return counts
        raise KeyError(name)


@dataclass(frozen=True)
class LoadResult:
    input_dir: Path
    loaded_at: dt.datetime  # UTC; the _loaded_at / loaded_at of every new row
    datasets: tuple[DatasetCounts, ...]
    erasure_register_applied: bool = False  # a non-empty raw.erasure_register was honoured

    def __getitem__(self, dataset: str) -> DatasetCounts:
        for counts in self.datasets:
            if counts.dataset == dataset:
                return counts
        raise KeyError(dataset)

    @property
    def read(self) -> int:
        return sum(d.read for d in self.datasets)

    @property
    def loaded(self) -> int:
        return sum(d.loaded for d in self.datasets)

    @property
    def quarantined(self) -> int:
        return sum(d.quarantined for d in self.datasets)

    @property
    def skipped_erased(self) -> int:
        return sum(d.skipped_erased for d in self.datasets)


def format_report(result: LoadResult) -> list[str]:
    """The reconciliation table, one line per file and per dataset."""
    rows = [("dataset", "file", "read", "loaded", "quarantined", "erased")]
    for ds in result.datasets:
        for f in ds.files:
            rows.append((ds.dataset, f.file, str(f.read), str(f.loaded), str(f.quarantined),
                         str(f.skipped_erased)))
        label = "(all files)" if ds.files else "(no file: table left as it was)"
        rows.append((ds.dataset, label, str(ds.read), str(ds.loaded), str(ds.quarantined),
                     str(ds.skipped_erased)))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    lines = []
    for r in rows:
        left = "  ".join(r[i].ljust(widths[i]) for i in range(2))
        right = "  ".join(r[i].rjust(widths[i]) for i in range(2, 6))
        lines.append(f"{left}  {right}")
    lines.append(
        f"reconciled: read {result.read} = loaded {result.loaded} "
        f"+ quarantined {result.quarantined} + erased {result.skipped_erased}"
    )
    if result.erasure_register_applied:
        lines.append(
            f"erased subjects: {result.skipped_erased} rows skipped "
            f"(in {contract.ERASURE_REGISTER_TABLE}; not loaded, not quarantined)"
        )
    return lines


# --------------------------------------------------------------------------
# Pre-flight (plain Python)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadPlan:
    input_dir: Path
    files: dict[str, tuple[Path, ...]]  # dataset name -> files, sorted

    def names(self, dataset: str) -> list[str]:
        return [p.name for p in self.files.get(dataset, ())]


def read_header(path: Path) -> str:
    """First line of a file as text: UTF-8, BOM stripped, no line ending."""
    try:
        with path.open("rb") as handle:
            first = handle.readline(HEADER_READ_LIMIT)
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None
    for sep in (b"\n", b"\r"):
        first = first.split(sep, 1)[0]
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: the header line is not UTF-8 text") from None
    return text.removeprefix("\ufeff")


def preflight(input_dir: Path | str) -> LoadPlan:
    """Check the input directory against the contract; raise UserError."""
    directory = Path(input_dir).expanduser()
    if not directory.exists():
        raise UserError(f"input directory {directory} does not exist")
    if not directory.is_dir():
        raise UserError(f"input {directory} is not a directory")
    directory = directory.resolve()
    files: dict[str, tuple[Path, ...]] = {}
    for dataset in contract.DATASETS:
        found = dataset.files(directory)
        if not found and dataset.required:
            patterns = " or ".join(dataset.file_globs)
            raise UserError(
                f"no {dataset.name} file in {directory} (expected {patterns})"
            )
        expected = ",".join(dataset.header)
        for path in found:
            if ":" in path.name:
                raise UserError(f"{path}: Spark cannot read a file name with ':'; rename it")
            if not dataset.has_header:
                if not os.access(path, os.R_OK):
                    raise UserError(f"{path}: cannot read: permission denied")
                continue
            header = read_header(path)
            if header != expected:
                shown = header if len(header) <= 200 else header[:200] + "..."
                raise UserError(
                    f"{path}: header does not match the {dataset.name} contract: "
                    f"expected {expected!r}, found {shown!r}"
                )
        files[dataset.name] = tuple(found)
    return LoadPlan(directory, files)


# --------------------------------------------------------------------------
# Line numbering
# --------------------------------------------------------------------------


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

    missing = field.isNull() | field.rlike(BLANK_RE)
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
        # (tests/python/test_loader.py checks they agree).
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
    quarantine."""
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
    field_reasons = F.concat_ws("; ", *problems)
    reason = F.coalesce(structural, F.when(field_reasons != "", field_reasons))
    stage2 = stage1.select(
        *typed, "_source_file", "_source_line", reason.alias("_reason"), "value"
    )
    if dataset.rules:
        rule_reasons = F.concat_ws(
            "; ",
            *[
                F.when(~F.coalesce(F.expr(rule.valid), F.lit(False)), F.lit(rule.reason))
                for rule in dataset.rules
            ],
        )
        stage2 = stage2.withColumn(
            "_reason",
            F.coalesce(F.col("_reason"), F.when(rule_reasons != "", rule_reasons)),
        )
    if erased is not None and dataset.holds_subjects:
        stage2 = _mark_erased(stage2, erased)
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


def _key_sql() -> str:
    """The dbt ``pseudonym_key`` macro: the key is read inside the JVM, so it
    never appears in a query text, plan or log."""
    return f"reflect('java.lang.System', 'getenv', '{PSEUDONYM_KEY_ENV}')"


def _pseudonym_sql(column: str) -> str:
    """The dbt ``pseudonymize`` macro's expression."""
    return f"lower(hex(hmac({_key_sql()}, cast(`{column}` as string))))"


def erased_subjects(spark: SparkSession) -> DataFrame | None:
    """The distinct pseudonyms of ``raw.erasure_register``, or None when the
    register is missing or empty. With pseudonyms to honour, the key must be
    in the Spark driver's environment: UserError otherwise."""
    from pyspark.sql import functions as F

    table = contract.ERASURE_REGISTER_TABLE
    if not spark.catalog.tableExists(table):
        return None
    register = spark.table(table)
    if REGISTER_COLUMN not in [c.lower() for c in register.columns]:
        raise UserError(f"{table} has no {REGISTER_COLUMN} column: cannot skip erased subjects")
    pseudonyms = (
        register.select(F.lower(F.col(REGISTER_COLUMN)).alias("_pseudonym"))
        .where(F.col("_pseudonym").isNotNull())
        .distinct()
    )
    if pseudonyms.isEmpty():
        return None
    key_length = spark.sql(f"select coalesce(length({_key_sql()}), 0)").first()[0]
    if key_length < MIN_KEY_LENGTH:
        raise UserError(
            f"{table} is not empty: the loader needs {PSEUDONYM_KEY_ENV} (at least "
            f"{MIN_KEY_LENGTH} characters, in the Spark driver's environment) to skip "
            "erased subjects"
        )
    return pseudonyms


def _mark_erased(rows: DataFrame, erased: DataFrame) -> DataFrame:
    """_erased: the row's subject is in the register. The register is small
    next to the data: broadcast."""
    from pyspark.sql import functions as F

    subject = F.col(contract.SUBJECT_COLUMN)
    pseudonym = F.when(subject.isNotNull(), F.expr(_pseudonym_sql(contract.SUBJECT_COLUMN)))
    hits = erased.select("_pseudonym", F.lit(True).alias("_hit"))
    return (
        rows.withColumn("_pseudonym", pseudonym)
        .join(F.broadcast(hits), "_pseudonym", "left")
        .select(*rows.columns, F.coalesce(F.col("_hit"), F.lit(False)).alias("_erased"))
    )


def _csv_fields(numbered: DataFrame, dataset: contract.Dataset) -> tuple[DataFrame, SparkColumn]:
    """Data lines (the header is line 1) with ``_f``, the fields as strings,
    and the structural problem of the line, if any."""
    from pyspark.sql import functions as F

    ncols = len(dataset.columns)
    value = F.col("value")
    ddl = ", ".join(f"`{c.name}` STRING" for c in dataset.columns)
    # Stage 1: the expensive pieces, once per line. A line without quotes
    # needs no quoted-field removal.
    stage1 = numbered.where(F.col("_source_line") > 1).select(
        "value",
        "_source_file",
        "_source_line",
        F.when(
            F.instr(value, '"') > 0,
            F.regexp_replace(value, F.lit(QUOTED_FIELD_RE), F.lit("$1")),
        )
        .otherwise(value)
        .alias("_unquoted"),
        F.from_csv(value, ddl, CSV_OPTIONS).alias("_f"),
    )
    nfields = F.size(F.split(F.col("_unquoted"), ",", -1))
    structural = (
        F.when(value.rlike(BLANK_RE), F.lit("blank line"))
        .when(~F.is_valid_utf8(value), F.lit("invalid UTF-8"))
        .when(F.instr(F.col("_unquoted"), '"') > 0, F.lit("malformed quotes"))
        .when(
            nfields != ncols,
            F.concat(
                F.lit("wrong field count: "),
                nfields.cast("string"),
                F.lit(f", expected {ncols}"),
            ),
        )
    )
    return stage1, structural


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


# --------------------------------------------------------------------------
# Staging and tables
# --------------------------------------------------------------------------


class Staging:
    """Parquet directories next to the raw tables (``<raw schema
    location>/loader_staging/<name>``), outside the metastore: cheaper than
    staging tables, invisible to dbt, removed at the end of every load."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        location = spark.catalog.getDatabase(contract.RAW_SCHEMA).locationUri
        self.root = f"{location.rstrip('/')}/{STAGING_DIR}"

    def _fs_path(self, path: str):
        jvm = self.spark.sparkContext._jvm
        hpath = jvm.org.apache.hadoop.fs.Path(path)
        return hpath, hpath.getFileSystem(self.spark.sparkContext._jsc.hadoopConfiguration())

    def exists(self) -> bool:
        hpath, fs = self._fs_path(self.root)
        return bool(fs.exists(hpath))

    def clear(self) -> None:
        hpath, fs = self._fs_path(self.root)
        if fs.exists(hpath):
            fs.delete(hpath, True)

    def write(self, name: str, df: DataFrame) -> DataFrame:
        """Materialize ``df`` and return a DataFrame reading it back."""
        path = f"{self.root}/{name}"
        df.write.mode("overwrite").parquet(path)
        return self.spark.read.schema(df.schema).parquet(path)


def _ddl(fields: Iterable[tuple[str, str]]) -> str:
    return ", ".join(f"`{name}` {sql_type}" for name, sql_type in fields)


def _schema_fields(df: DataFrame) -> list[tuple[str, str]]:
    return [(f.name, f.dataType.simpleString()) for f in df.schema.fields]


def _ensure_table(
    spark: SparkSession,
    qualified: str,
    fields: list[tuple[str, str]],
    partition_by: Sequence[str] = (),
) -> None:
    """Create the target if missing; refuse one with another schema."""
    if spark.catalog.tableExists(qualified):
        found = _schema_fields(spark.table(qualified))
        if [(n.lower(), t) for n, t in found] != [(n.lower(), t) for n, t in fields]:
            raise UserError(
                f"table {qualified} exists with another schema ({_ddl(found)}); "
                f"expected ({_ddl(fields)}): drop it or use a fresh data dir"
            )
        return
    partitioned = f" PARTITIONED BY ({', '.join(partition_by)})" if partition_by else ""
    spark.sql(f"CREATE TABLE {qualified} ({_ddl(fields)}) USING parquet{partitioned}")


def table_fields(spark: SparkSession, dataset: contract.Dataset) -> list[tuple[str, str]]:
    """(name, Spark SQL type) of a dataset's raw table: the contract columns
    typed, the lineage columns, then the partition columns."""
    from pyspark.sql import functions as F

    fields = [(c.name, c.spark_type) for c in dataset.columns]
    fields += [("_source_file", "string"), ("_source_line", "bigint"), ("_loaded_at", "timestamp")]
    if dataset.partition_by:
        empty = spark.range(0).select(*[F.lit(None).cast(t).alias(n) for n, t in fields])
        typed = empty.select(*[F.expr(expr).alias(name) for name, expr in dataset.partition_by])
        fields += _schema_fields(typed)
    return fields


def _insert_overwrite(spark: SparkSession, target: str, source: DataFrame, dynamic: bool) -> None:
    """INSERT OVERWRITE target from staged rows. With ``dynamic``, only the
    partitions present in ``source`` are replaced (set here explicitly: with
    static mode the whole table would be wiped)."""
    key = "spark.sql.sources.partitionOverwriteMode"
    previous = spark.conf.get(key, None)
    spark.conf.set(key, "dynamic" if dynamic else "static")
    try:
        columns = [n for n, _ in _schema_fields(spark.table(target))]
        source.select(*columns).write.insertInto(target, overwrite=True)
    finally:
        if previous is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, previous)


def _drop_partitions(spark: SparkSession, target: str, column: str, values: Iterable[str]) -> None:
    for value in sorted(values):
        spark.sql(f"ALTER TABLE {target} DROP IF EXISTS PARTITION ({column} = '{value}')")


# --------------------------------------------------------------------------
# The load
# --------------------------------------------------------------------------


@dataclass
class _PublishStep:
    """One target to publish: its new content, and how to undo it."""

    target: str
    content: DataFrame  # staged
    partition_column: str | None = None
    backup: DataFrame | None = None  # staged rows to restore (None: nothing)
    new_partitions: frozenset[str] = frozenset()  # did not exist before
    replaced_partitions: frozenset[str] = frozenset()  # existing ones rewritten
    emptied_partitions: frozenset[str] = frozenset()  # existing, left empty: dropped


def load_raw(
    spark: SparkSession, source: LoadPlan | Path | str, *, log: Log | None = None
) -> LoadResult:
    """Load every contract dataset of a directory into the raw tables.

    ``source`` is a directory (pre-flight runs first) or a LoadPlan from
    :func:`preflight`. Returns the reconciliation; raises UserError (bad input
    or target), ReconciliationError (nothing published) or another error
    (nothing published, or the previous tables restored).
    """
    plan = source if isinstance(source, LoadPlan) else preflight(source)
    say = log or (lambda _msg: None)
    loaded_at = dt.datetime.now(dt.timezone.utc)
    tiers = contract.subscription_tiers()
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {contract.RAW_SCHEMA}")
    # Targets first: a wrong existing table fails before any parsing.
    for dataset in contract.DATASETS:
        partition_cols = [name for name, _ in dataset.partition_by]
        _ensure_table(spark, dataset.table, table_fields(spark, dataset), partition_cols)
    _ensure_table(spark, contract.QUARANTINE_TABLE, list(QUARANTINE_COLUMNS))
    erased = erased_subjects(spark)  # before staging: a missing key touches nothing
    staging = Staging(spark)
    staging.clear()
    try:
        if erased is not None:
            # One snapshot of the register for the whole load.
            erased = staging.write("erased_subjects", erased)
        return _load(spark, plan, tiers, loaded_at, say, staging, erased)
    finally:
        staging.clear()


def _load(
    spark: SparkSession,
    plan: LoadPlan,
    tiers: Sequence[str],
    loaded_at: dt.datetime,
    say: Log,
    staging: Staging,
    erased: DataFrame | None = None,
) -> LoadResult:
    from pyspark.sql import functions as F

    loaded_at_col = F.lit(loaded_at).cast("timestamp")
    # Optional datasets without a file in this load are left as they are.
    active = [d for d in contract.DATASETS if plan.files.get(d.name)]
    names = {d.name: plan.names(d.name) for d in active}

    # 1. Parse every dataset into staging.
    read: dict[str, dict[str, int]] = {}
    parsed: dict[str, DataFrame] = {}
    for dataset in active:
        say(f"parsing {dataset.name}: {', '.join(names[dataset.name])}")
        numbered, blocks = number_lines(spark, plan.files[dataset.name])
        read[dataset.name] = lines_read(blocks, header_lines=int(dataset.has_header))
        if set(read[dataset.name]) != set(names[dataset.name]):
            raise RuntimeError(
                f"Spark read {sorted(read[dataset.name])}, expected {names[dataset.name]}"
            )
        earlier = None
        if dataset.unique_key:
            earlier = spark.table(dataset.table).where(
                ~F.col("_source_file").isin(names[dataset.name])
            )
        rows = parse(numbered, dataset, tiers, earlier, erased)
        parsed[dataset.name] = staging.write(f"parsed_{dataset.name}", rows)

    # 2. Merge: the new content of every target, in staging.
    steps: dict[str, _PublishStep] = {}
    for dataset in active:
        say(f"merging {dataset.table}")
        fresh = parsed[dataset.name].where(F.col("_reason").isNull() & ~F.col("_erased")).select(
            *[c.name for c in dataset.columns],
            "_source_file",
            "_source_line",
            loaded_at_col.alias("_loaded_at"),
            *[F.expr(expr).alias(name) for name, expr in dataset.partition_by],
        )
        if _schema_fields(fresh) != table_fields(spark, dataset):
            raise RuntimeError(f"loader bug: {_schema_fields(fresh)} for {dataset.table}")
        partition_cols = [name for name, _ in dataset.partition_by]
        current = spark.table(dataset.table)
        from_load = F.col("_source_file").isin(names[dataset.name])
        if not partition_cols:
            merged = current.where(~from_load).unionByName(fresh)
            steps[dataset.name] = _PublishStep(
                dataset.table, staging.write(dataset.name, merged)
            )
            continue
        if len(partition_cols) != 1:
            raise NotImplementedError("one partition column per dataset is supported")
        (pcol,) = partition_cols
        # One small aggregate: per partition value, does it get new rows,
        # hold rows of this load's files, hold rows of other files?
        zero, one = F.lit(0), F.lit(1)
        flags = fresh.select(pcol, one.alias("n"), zero.alias("l"), zero.alias("o")).unionByName(
            current.select(
                pcol,
                zero.alias("n"),
                from_load.cast("int").alias("l"),
                (~from_load).cast("int").alias("o"),
            )
        )
        new, load, other = set(), set(), set()
        for r in flags.groupBy(pcol).agg(F.max("n"), F.max("l"), F.max("o")).collect():
            key = str(r[0])
            for flag, bucket in zip(r[1:], (new, load, other)):
                if flag:
                    bucket.add(key)
        existing = load | other
        affected = new | load
        if affected & other:
            # Rows of other files in affected partitions are kept: they are
            # read from the target, so the new content must be staged first.
            kept = current.where(F.col(pcol).cast("string").isin(sorted(affected)) & ~from_load)
            content = staging.write(
                dataset.name, kept.unionByName(fresh).hint("rebalance", pcol)
            )
        else:
            # Only new rows (first load, a new day): already staged, as parsed.
            content = fresh
        steps[dataset.name] = _PublishStep(
            dataset.table,
            content,
            partition_column=pcol,
            new_partitions=frozenset(new - existing),
            replaced_partitions=frozenset(affected & existing),
            emptied_partitions=frozenset(load - new - other),
        )

    say(f"merging {contract.QUARANTINE_TABLE}")
    keep = F.lit(True)
    for dataset_name, files in names.items():
        keep = keep & ~((F.col("dataset") == dataset_name) & F.col("source_file").isin(files))
    merged_q = spark.table(contract.QUARANTINE_TABLE).where(keep)
    for dataset in active:
        merged_q = merged_q.unionByName(
            parsed[dataset.name]
            .where(F.col("_reason").isNotNull() & ~F.col("_erased"))
            .select(
                F.lit(dataset.name).alias("dataset"),
                F.col("_source_file").alias("source_file"),
                F.col("_source_line").alias("line_number"),
                F.col("_reason").alias("reason"),
                F.col("_raw_line").alias("raw_line"),
                loaded_at_col.alias("loaded_at"),
            )
        )
    quarantine = _PublishStep(contract.QUARANTINE_TABLE, staging.write("quarantine", merged_q))

    # 3. Reconcile before anything is published.
    counts = _reconcile(plan, read, steps, quarantine, parsed)
    result = LoadResult(plan.input_dir, loaded_at, counts, erasure_register_applied=erased is not None)
    if erased is not None:
        say(f"erased subjects: {result.skipped_erased} rows skipped")

    # 4. Publish: whole tables first, partitioned tables last.
    order = [s for s in steps.values() if s.partition_column is None]
    order.append(quarantine)
    order += [s for s in steps.values() if s.partition_column is not None]
    for step in order:
        step.backup = _backup(spark, staging, step)
    _publish(spark, order, say)
    return result


def _reconcile(
    plan: LoadPlan,
    read: dict[str, dict[str, int]],
    steps: dict[str, _PublishStep],
    quarantine: _PublishStep,
    parsed: dict[str, DataFrame],
) -> tuple[DatasetCounts, ...]:
    """Per file of this load: lines read (from the block statistics) must equal
    the rows about to be published, loaded + quarantined, plus the lines
    skipped as erased subjects, and their line numbers must run from the
    first data line (2 after a CSV header, else 1) to the last."""
    from pyspark.sql import functions as F

    def line_counts(rows: DataFrame, dataset: str, good: int, skipped: int) -> DataFrame:
        return rows.select(
            F.lit(dataset).alias("dataset"),
            F.col("_source_file").alias("file"),
            F.col("_source_line").alias("line"),
            F.lit(good).alias("good"),
            F.lit(skipped).alias("skipped"),
        )

    parts = []
    for dataset in contract.DATASETS:
        files = plan.names(dataset.name)
        if not files:
            continue
        loaded = steps[dataset.name].content.where(F.col("_source_file").isin(files))
        parts.append(line_counts(loaded, dataset.name, good=1, skipped=0))
        parts.append(
            quarantine.content.where(
                (F.col("dataset") == dataset.name) & F.col("source_file").isin(files)
            ).select(
                "dataset",
                F.col("source_file").alias("file"),
                F.col("line_number").alias("line"),
                F.lit(0).alias("good"),
                F.lit(0).alias("skipped"),
            )
        )
        erased = parsed[dataset.name].where(F.col("_erased"))
        parts.append(line_counts(erased, dataset.name, good=0, skipped=1))
    if not parts:
        return tuple(DatasetCounts(d.name, d.table, ()) for d in contract.DATASETS)
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part)
    found = {
        (r["dataset"], r["file"]): r
        for r in union.groupBy("dataset", "file")
        .agg(
            F.sum("good").alias("loaded"),
            F.sum("skipped").alias("skipped"),
            F.count(F.lit(1)).alias("rows"),
            F.min("line").alias("first"),
            F.max("line").alias("last"),
        )
        .collect()
    }
    results, problems = [], []
    for dataset in contract.DATASETS:
        per_file = []
        header_lines = int(dataset.has_header)
        for name in plan.names(dataset.name):
            n_read = read[dataset.name][name]
            row = found.get((dataset.name, name))
            loaded = int(row["loaded"]) if row else 0
            skipped = int(row["skipped"]) if row else 0
            quarantined = int(row["rows"]) - loaded - skipped if row else 0
            counts = FileCounts(dataset.name, name, n_read, loaded, quarantined, skipped)
            per_file.append(counts)
            if not counts.balanced:
                problems.append(
                    f"{dataset.name}/{name}: read {n_read} != loaded {loaded} "
                    f"+ quarantined {quarantined} + skipped as erased {skipped}"
                )
            elif row and (
                row["first"] != 1 + header_lines or row["last"] != n_read + header_lines
            ):
                problems.append(
                    f"{dataset.name}/{name}: line numbers {row['first']}..{row['last']} "
                    f"for {n_read} data lines"
                )
        results.append(DatasetCounts(dataset.name, dataset.table, tuple(per_file)))
    if problems:
        raise ReconciliationError(
            "reconciliation failed, nothing published: " + "; ".join(problems)
        )
    return tuple(results)


def _backup(spark: SparkSession, staging: Staging, step: _PublishStep) -> DataFrame | None:
    """Stage what publishing ``step`` overwrites, so it can be restored: a
    whole table, or the existing affected partitions of a partitioned one
    (None when a load only adds partitions, e.g. a new day)."""
    from pyspark.sql import functions as F

    rows = spark.table(step.target)
    if step.partition_column is not None:
        if not step.replaced_partitions:
            return None
        replaced = sorted(step.replaced_partitions)
        rows = rows.where(F.col(step.partition_column).cast("string").isin(replaced))
    return staging.write(f"backup_{step.target.split('.', 1)[1]}", rows)


def _publish_step(spark: SparkSession, step: _PublishStep) -> None:
    if step.partition_column is None:
        _insert_overwrite(spark, step.target, step.content, dynamic=False)
        return
    _drop_partitions(spark, step.target, step.partition_column, step.emptied_partitions)
    # Few, large files per partition; AQE splits a big partition over tasks.
    content = step.content.hint("rebalance", step.partition_column)
    _insert_overwrite(spark, step.target, content, dynamic=True)


def _restore_step(spark: SparkSession, step: _PublishStep) -> None:
    if step.partition_column is None:
        assert step.backup is not None
        _insert_overwrite(spark, step.target, step.backup, dynamic=False)
        return
    _drop_partitions(spark, step.target, step.partition_column, step.new_partitions)
    if step.backup is not None:
        _insert_overwrite(spark, step.target, step.backup, dynamic=True)


def _publish(spark: SparkSession, order: list[_PublishStep], say: Log) -> None:
    done: list[_PublishStep] = []
    try:
        for step in order:
            say(f"publishing {step.target}")
            done.append(step)  # a failing step may be half done: restore it too
            _publish_step(spark, step)
    except BaseException as exc:
        failures = []
        for step in reversed(done):
            try:
                _restore_step(spark, step)
            except Exception as restore_exc:  # keep restoring the others
                failures.append(f"{step.target}: {_first_line(restore_exc)}")
        if failures:
            raise RuntimeError(
                f"publishing failed ({_first_line(exc)}) and restoring failed for "
                + "; ".join(failures)
                + ": rerun the load to converge"
            ) from exc
        raise


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
