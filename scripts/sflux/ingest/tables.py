"""Staging and the raw tables: where a load's results wait before publishing,
and the DDL and overwrite helpers for the targets (loader steps 3 and 5).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from sflux.core.errors import UserError
from sflux.ingest import contract
from sflux.ingest.layout import STAGING_DIR

if TYPE_CHECKING:  # pyspark is imported lazily: pre-flight must stay fast
    from pyspark.sql import DataFrame, SparkSession


class Staging:
    """Parquet directories next to the raw tables (``<raw schema
    location>/loader_staging/<name>``), outside the metastore: cheaper than
    staging tables, invisible to dbt, removed at the end of every load."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        location = spark.catalog.getDatabase(contract.RAW_SCHEMA).locationUri
        self.root = f"{location.rstrip('/')}/{STAGING_DIR}"

    def exists(self) -> bool:
        return path_exists(self.spark, self.root)

    def clear(self) -> None:
        delete_path(self.spark, self.root)

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def write(self, name: str, df: DataFrame, partition_by: Sequence[str] = ()) -> DataFrame:
        """Materialize ``df`` and return a DataFrame reading it back. Rows
        staged ``partition_by`` the target's partition column are read back
        one partition per file, so publishing them needs no shuffle."""
        path = self.path(name)
        df.write.mode("overwrite").partitionBy(*partition_by).parquet(path)
        return self.spark.read.schema(df.schema).parquet(path)


def _fs_path(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    return hpath, hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def path_exists(spark: SparkSession, path: str) -> bool:
    hpath, fs = _fs_path(spark, path)
    return bool(fs.exists(hpath))


def delete_path(spark: SparkSession, path: str) -> None:
    hpath, fs = _fs_path(spark, path)
    if fs.exists(hpath):
        fs.delete(hpath, True)


def make_dir(spark: SparkSession, path: str) -> None:
    hpath, fs = _fs_path(spark, path)
    fs.mkdirs(hpath)


def move_path(spark: SparkSession, source: str, target: str) -> None:
    """Rename a directory; ``target`` must not exist (Hadoop would move
    ``source`` into it)."""
    src, fs = _fs_path(spark, source)
    dst, _ = _fs_path(spark, target)
    if fs.exists(dst):
        raise RuntimeError(f"cannot move {source} to {target}: the target exists")
    if not fs.rename(src, dst):
        raise RuntimeError(f"cannot move {source} to {target}")


def table_location(spark: SparkSession, qualified: str) -> str:
    """Where the metastore keeps a table's files."""
    rows = spark.sql(f"DESCRIBE TABLE EXTENDED {qualified}").where("col_name = 'Location'").collect()
    if not rows:
        raise RuntimeError(f"{qualified} has no location")
    return str(rows[0]["data_type"])


def _ddl(fields: Iterable[tuple[str, str]]) -> str:
    return ", ".join(f"`{name}` {sql_type}" for name, sql_type in fields)


def schema_fields(df: DataFrame) -> list[tuple[str, str]]:
    return [(f.name, f.dataType.simpleString()) for f in df.schema.fields]


def ensure_table(
    spark: SparkSession,
    qualified: str,
    fields: list[tuple[str, str]],
    partition_by: Sequence[str] = (),
) -> None:
    """Create the target if missing; refuse one with another schema."""
    if spark.catalog.tableExists(qualified):
        found = schema_fields(spark.table(qualified))
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
        fields += schema_fields(typed)
    return fields


def insert_overwrite(spark: SparkSession, target: str, source: DataFrame, dynamic: bool) -> None:
    """INSERT OVERWRITE target from staged rows. With ``dynamic``, only the
    partitions present in ``source`` are replaced (set here explicitly: with
    static mode the whole table would be wiped)."""
    key = "spark.sql.sources.partitionOverwriteMode"
    previous = spark.conf.get(key, None)
    spark.conf.set(key, "dynamic" if dynamic else "static")
    try:
        columns = [n for n, _ in schema_fields(spark.table(target))]
        source.select(*columns).write.insertInto(target, overwrite=True)
    finally:
        if previous is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, previous)


def drop_partitions(spark: SparkSession, target: str, column: str, values: Iterable[str]) -> None:
    for value in sorted(values):
        spark.sql(f"ALTER TABLE {target} DROP IF EXISTS PARTITION ({column} = '{value}')")


