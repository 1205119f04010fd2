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
   row rules checked, including that its ``not_after_load`` timestamps (a
   consent event's ``event_ts``) are not in the future, beyond the
   clock-skew tolerance (dbt var ``clock_skew_tolerance_minutes``). Where the dataset has a unique key, the first
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
5. **Publish**: a whole table (subscriptions, users, consent_events,
   quarantine) by swapping directories: its previous directory is moved
   aside and the staged one into its location (two renames, no copy);
   vitals / events by ``INSERT OVERWRITE`` from staging (dynamic partition
   overwrite of the affected ``reading_date`` / ``event_date`` partitions;
   partitions left empty are dropped), after staging a copy of the existing
   partitions it overwrites (none when a load only adds days). If any
   publish step fails, every step done is undone (directories moved back,
   partitions restored), so a failed load leaves the previous tables as
   they were. Staging, with what was moved aside, is removed at the end.

Where each step lives: preflight.py (1), parsing.py and erasures.py (2),
tables.py (staging and the overwrite helpers of 3 and 5), results.py (the
counts and report); this module runs the steps in order.

Restriction: a quoted field must not contain a newline (each physical line is
one record); such a record shows up as quarantined lines, never as bad data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sflux.ingest import contract
from sflux.ingest.erasures import erased_subjects
from sflux.ingest.layout import Log, QUARANTINE_COLUMNS
from sflux.ingest.parsing import lines_read, number_lines, parse
from sflux.ingest.preflight import LoadPlan, preflight
from sflux.ingest.results import DatasetCounts, FileCounts, LoadResult
from sflux.ingest.tables import (
    Staging,
    delete_path,
    drop_partitions,
    ensure_table,
    insert_overwrite,
    make_dir,
    move_path,
    path_exists,
    schema_fields,
    table_fields,
    table_location,
)

if TYPE_CHECKING:  # pyspark is imported lazily: pre-flight must stay fast
    from pyspark.sql import DataFrame, SparkSession


class ReconciliationError(RuntimeError):
    """Rows read != rows loaded + rows quarantined + rows skipped as erased: a
    loader bug; nothing was published."""


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
    # A whole table is published by swapping directories: the staged content
    # is moved into the table's location and the previous files aside, to
    # ``backup_path``, until the load ends. No copy either way.
    staged_path: str | None = None
    backup_path: str | None = None
    location: str | None = None  # the table's, from the metastore
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
        ensure_table(spark, dataset.table, table_fields(spark, dataset), partition_cols)
    ensure_table(spark, contract.QUARANTINE_TABLE, list(QUARANTINE_COLUMNS))
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
        rows = parse(numbered, dataset, tiers, earlier, erased, loaded_at=loaded_at)
        # Staged by the target's partition column (NULL for rows that are
        # not loaded): the publish then writes each partition's rows without
        # a shuffle.
        rows = rows.select("*", *[F.expr(expr).alias(name) for name, expr in dataset.partition_by])
        partition_cols = [name for name, _ in dataset.partition_by]
        parsed[dataset.name] = staging.write(f"parsed_{dataset.name}", rows, partition_cols)

    # 2. Merge: the new content of every target, in staging.
    steps: dict[str, _PublishStep] = {}
    for dataset in active:
        say(f"merging {dataset.table}")
        fresh = parsed[dataset.name].where(F.col("_reason").isNull() & ~F.col("_erased")).select(
            *[c.name for c in dataset.columns],
            "_source_file",
            "_source_line",
            loaded_at_col.alias("_loaded_at"),
            *[name for name, _ in dataset.partition_by],
        )
        if schema_fields(fresh) != table_fields(spark, dataset):
            raise RuntimeError(f"loader bug: {schema_fields(fresh)} for {dataset.table}")
        partition_cols = [name for name, _ in dataset.partition_by]
        current = spark.table(dataset.table)
        from_load = F.col("_source_file").isin(names[dataset.name])
        if not partition_cols:
            merged = current.where(~from_load).unionByName(fresh)
            steps[dataset.name] = _whole_table_step(staging, dataset.table, dataset.name, merged)
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
            content = staging.write(dataset.name, kept.unionByName(fresh), [pcol])
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
    quarantine = _whole_table_step(staging, contract.QUARANTINE_TABLE, "quarantine", merged_q)

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
        if step.partition_column is None:
            step.location = table_location(spark, step.target)
        else:
            step.backup = _backup(spark, staging, step)
    _publish(spark, order, say)
    return result


def _whole_table_step(staging: Staging, target: str, name: str, content: DataFrame) -> _PublishStep:
    return _PublishStep(
        target,
        staging.write(name, content),
        staged_path=staging.path(name),
        backup_path=staging.path(f"backup_{name}"),
    )


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
    """Stage the existing affected partitions of a partitioned table, which
    publishing ``step`` overwrites, so they can be restored (None when a load
    only adds partitions, e.g. a new day)."""
    from pyspark.sql import functions as F

    assert step.partition_column is not None
    if not step.replaced_partitions:
        return None
    replaced = sorted(step.replaced_partitions)
    rows = spark.table(step.target).where(F.col(step.partition_column).cast("string").isin(replaced))
    return staging.write(f"backup_{step.target.split('.', 1)[1]}", rows, [step.partition_column])


def _publish_step(spark: SparkSession, step: _PublishStep) -> None:
    if step.partition_column is None:
        _swap_in(spark, step)
        return
    drop_partitions(spark, step.target, step.partition_column, step.emptied_partitions)
    # Staged partitioned by the same column: each task reads one partition's
    # files and writes that partition, no shuffle.
    insert_overwrite(spark, step.target, step.content, dynamic=True)


def _swap_in(spark: SparkSession, step: _PublishStep) -> None:
    """Publish a whole table: its previous directory is moved aside (an empty
    one if it had none, so a restore always has one to move back), then the
    staged directory into its place."""
    assert step.staged_path and step.backup_path and step.location
    if path_exists(spark, step.location):
        move_path(spark, step.location, step.backup_path)
    else:
        make_dir(spark, step.backup_path)
    move_path(spark, step.staged_path, step.location)
    spark.catalog.refreshTable(step.target)


def _restore_step(spark: SparkSession, step: _PublishStep) -> None:
    if step.partition_column is None:
        assert step.backup_path and step.location
        if path_exists(spark, step.backup_path):  # else: nothing was moved yet
            delete_path(spark, step.location)
            move_path(spark, step.backup_path, step.location)
        spark.catalog.refreshTable(step.target)
        return
    drop_partitions(spark, step.target, step.partition_column, step.new_partitions)
    if step.backup is not None:
        insert_overwrite(spark, step.target, step.backup, dynamic=True)


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
