"""The hand-written Spark jobs that scripts/benchmark.py races against the
dbt build. Each computes the City Stress Matrix from the loaded raw zone
(``raw.vitals``, ``raw.subscriptions``; (e): from the landing files) with the
project's rules:

0. only members with analytics consent now (:func:`consenting_users_sql`,
   the rule of base_app__analytics_consent, fail-closed holds included);
1. drop NULL and out-of-range heart rates (dbt vars heart_rate_min/max_bpm);
2. count exact duplicates (same user, timestamp, value) once (min(city));
3. epoch-aligned tumbling windows of ``frozen_window_minutes``; a window with
   at least ``frozen_min_readings`` readings and max = min is frozen, and all
   its readings are excluded;
4. each user's latest subscription (latest start_date; on a tie, the row
   landed last: _source_file, _source_line), inner join;
5. city x tier cells with fewer than ``min_cell_users`` distinct users are
   suppressed (NULL), and with exactly one such cell the smallest published
   one too (complementary suppression); then one avg_hr_<tier> column per
   tier (:func:`matrix_from_cells_sql`, shared by every variant).

Variants (the letters are the benchmark's):

* ``dataframe`` (b): the case-study notebook step by step with the DataFrame
  API and native functions: hash (HMAC-SHA256, key read inside Spark with
  ``reflect``) + mask, written out as the anonymized dataset, 10-minute
  groupBy, left-anti join, broadcast join, groupBy + pivot.
* ``python_udf`` (c): the same job, but hashing and masking are row-at-a-time
  Python UDFs as in seed 001. **This is the anti-pattern being measured**;
  it is the only place in the repo where Python UDFs are allowed, and it
  exists to show what they cost. Never copy it into a pipeline.
* ``sql`` (d): the lower bound, one Spark SQL query from raw to the matrix.
  It neither pseudonymizes nor masks and writes nothing but the result: the
  minimum work the quality rules and the aggregation need.
* ``landing_csv`` (e): the notebook of (b), but reading the landing CSVs
  directly instead of the loaded raw zone, as the case study ran (no loader):
  see :func:`_landing_inputs` for how it keeps the loader's contract.

Run as a module (``python -m sflux.bench.jobs VARIANT --result FILE``), each
variant starts its own JVM with the session of sflux.core.spark (profiles.yml),
so all variants and dbt run with the same Spark settings and no warm cache.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from sflux.core import paths
from sflux.ingest import contract
from sflux.privacy import keys
from sflux.privacy.keys import KEY_ENV, pseudonym

# Consent lives on the member profile; every variant filters on it like dbt.
USERS_TABLE = f"{contract.RAW_SCHEMA}.users"
# The consent lines the loader rejected, other than exact duplicates.
REJECTED_CONSENT_LINES = f"""(
    select raw_line from {contract.QUARANTINE_TABLE}
    where dataset = 'consent_events' and not startswith(reason, 'duplicate ')
)"""


def consenting_users_sql(profiles: str = USERS_TABLE,
                         consent_events: str = contract.CONSENT_EVENTS.table,
                         rejected_lines: str = REJECTED_CONSENT_LINES) -> str:
    """The members who consent to analytics now, the rule of the dbt model
    base_app__analytics_consent: the latest analytics event (withdraw wins a
    same-second tie), else the profile flag; and it fails closed: a member
    with an event dated later than now plus the clock-skew tolerance, or
    named by a rejected consent line (any token of it, or its first CSV
    field), is out. The relations are the raw tables by default; variant (e)
    passes views of the landing files."""
    minutes = int(contract.clock_skew_tolerance().total_seconds() // 60)
    future = f"event_ts > current_timestamp() + interval {minutes} minutes"
    return f"""
select profiles.user_id
from {profiles} as profiles
left join (
    select user_id,
           max_by(action = 'grant', struct(event_ts, action = 'withdraw')) as is_granted
    from {consent_events}
    where consent_type = 'analytics' and not ({future})
    group by user_id
) as latest on profiles.user_id = latest.user_id
left anti join (
    select user_id from {consent_events}
    where consent_type = 'analytics' and {future}
    union all
    select trim(candidate) as user_id
    from {rejected_lines} as rejected
        lateral view explode(array_union(
            split(rejected.raw_line, '[\\\\s,;|"\\\\x27=]+'),
            array(from_csv(rejected.raw_line, 'user_id string').user_id))) named as candidate
) as holds on profiles.user_id = holds.user_id
where coalesce(latest.is_granted, profiles.consent_analytics, false)
"""


VARIANTS = ("dataframe", "python_udf", "sql", "landing_csv")


def rules() -> dict[str, int]:
    """The quality-rule vars from dbt_project.yml (one source of truth)."""
    project = yaml.safe_load((paths.home() / "dbt_project.yml").read_text(encoding="utf-8"))
    v = project["vars"]
    names = ("heart_rate_min_bpm", "heart_rate_max_bpm", "frozen_window_minutes",
             "frozen_min_readings", "min_cell_users")
    return {name: int(v[name]) for name in names}


def tier_columns() -> list[tuple[str, str]]:
    """(tier, column) pairs in rank order, as fct_city_stress_matrix names them."""
    import re

    return [(t, "avg_hr_" + re.sub("[^a-z0-9]+", "_", t.lower()).strip("_"))
            for t in contract.subscription_tiers()]


def _mask_name_native(column: str):
    """Native equivalent of macros/privacy/mask_name.sql."""
    from pyspark.sql import functions as F

    return F.expr(
        f"nullif(array_join(transform(filter(split(trim({column}), '[\\\\s,]+'), "
        "p -> p != ''), p -> concat(left(p, 1), '***')), ' '), '')"
    )


def _hmac_native(column: str):
    from pyspark.sql import functions as F

    # The key is read by the JVM from its own environment (sflux.privacy.keys):
    # it never appears in a plan, a log line or SQL text.
    return F.expr(keys.pseudonym_sql(column))


# --- (c) THE ANTI-PATTERN BEING MEASURED: row-at-a-time Python UDFs ---------
# Every row is serialized to a Python worker and back. Kept here, and only
# here, so the benchmark can show their cost next to the native functions.
def _python_hmac(value):
    import os

    if value is None:
        return None
    # Read in the Python worker from its inherited environment: the key is
    # not captured in the pickled closure.
    return pseudonym(value, os.environ[KEY_ENV])


def _python_mask(value):
    import re

    if value is None:
        return None
    parts = [p for p in re.split(r"[\s,]+", value.strip()) if p]
    return " ".join(p[0] + "***" for p in parts) or None


def _anti_pattern_python_udfs():
    """(hash, mask) as pyspark Python UDFs: the seed-001 approach."""
    from pyspark import cloudpickle
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    # Ship the functions by value (with the keyed-hash rule they call): a
    # Python worker need not import sflux.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    cloudpickle.register_pickle_by_value(keys)
    bench_only_py_udf = F.udf  # ANTI-PATTERN (benchmark variant c only)
    # useArrow=False: the plain pickled row-at-a-time UDF of seed 001.
    return (bench_only_py_udf(_python_hmac, StringType(), useArrow=False),
            bench_only_py_udf(_python_mask, StringType(), useArrow=False))
# --- end of the anti-pattern -------------------------------------------------


def _raw_inputs(spark):
    """(b), (c): the readings, subscriptions and consenting members of the
    loaded raw zone (typed parquet)."""
    vitals = spark.table(contract.VITALS.table).select(*VITALS_COLUMNS)
    subscriptions = spark.table(contract.SUBSCRIPTIONS.table).select(*SUBSCRIPTION_COLUMNS)
    return vitals, subscriptions, spark.sql(consenting_users_sql())


def _landing_inputs(spark, landing: Path):
    """(e): the same three inputs straight from the landing files. The vitals
    CSVs (nearly all the bytes) with ``spark.read.csv`` and an explicit
    schema, as the case study did: a line Spark's CSV reader finds
    malformed (a field that does not type) is dropped, and so is a line missing a required
    field, the loader's rule for those. The three small files (subscriptions,
    users, consent events: one line per member or consent change) go through
    the loader's own parser, because their faults decide who counts: a
    rejected profile line leaves its member without consent, a rejected
    consent line holds the member it names out, a repeated line is one."""
    import datetime as dt
    from functools import reduce

    from pyspark.sql import functions as F

    from sflux.ingest.layout import CSV_OPTIONS
    from sflux.ingest.parsing import _spark_path, number_lines, parse

    tiers = contract.subscription_tiers()
    loaded_at = dt.datetime.now(dt.timezone.utc)

    def parsed(dataset):
        numbered, _ = number_lines(spark, dataset.files(landing))
        return parse(numbered, dataset, tiers, loaded_at=loaded_at)

    schema = ", ".join(f"`{c.name}` {c.spark_type}" for c in contract.VITALS.columns)
    vitals = (
        spark.read.schema(schema)
        .options(**{**CSV_OPTIONS, "mode": "DROPMALFORMED"})
        .option("header", True)
        .option("timestampFormat", contract.TIMESTAMP_FORMAT)
        .csv([_spark_path(f) for f in contract.VITALS.files(landing)])
    )
    required = [F.col(c.name).isNotNull() for c in contract.VITALS.columns if c.required]
    vitals = vitals.where(reduce(lambda x, y: x & y, required)).select(*VITALS_COLUMNS)

    subscriptions = parsed(contract.SUBSCRIPTIONS).where("_reason is null").select(
        *SUBSCRIPTION_COLUMNS)
    users = parsed(contract.USERS)
    users.where("_reason is null").createOrReplaceTempView("landing_profiles")
    consent = parsed(contract.CONSENT_EVENTS)
    consent.where("_reason is null").createOrReplaceTempView("landing_consent_events")
    consent.where("not startswith(_reason, 'duplicate ')").select(
        F.col("_raw_line").alias("raw_line")).createOrReplaceTempView("landing_rejected_consent")
    consenting = spark.sql(consenting_users_sql(
        "landing_profiles", "landing_consent_events", "landing_rejected_consent"))
    return vitals, subscriptions, consenting


VITALS_COLUMNS = ("user_id", "full_name", "city", "device_id", "reading_ts", "heart_rate")
SUBSCRIPTION_COLUMNS = ("user_id", "subscription_type", "start_date", "_source_file", "_source_line")


def notebook_job(spark, workdir: str, use_python_udfs: bool = False,
                 landing: Path | None = None) -> list[dict[str, Any]]:
    """Variants (b) and (c) (from the raw zone), and (e) (``landing``: from
    the landing CSVs): the case-study notebook, step by step."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    r = rules()
    window_seconds = r["frozen_window_minutes"] * 60
    if use_python_udfs:
        hash_col, mask_col = _anti_pattern_python_udfs()
        user_hash = hash_col(F.col("user_id"))
        device_hash = hash_col(F.col("device_id"))
        name_mask = mask_col(F.col("full_name"))
    else:
        user_hash = _hmac_native("user_id")
        device_hash = _hmac_native("device_id")
        name_mask = _mask_name_native("full_name")

    # Step 1: read with an explicit schema (the raw zone is typed parquet; the
    # landing CSVs get one).
    if landing is None:
        vitals, subscriptions, consenting = _raw_inputs(spark)
    else:
        vitals, subscriptions, consenting = _landing_inputs(spark, landing)

    # Only members who consented to analytics enter the anonymized zone.
    vitals = vitals.join(F.broadcast(consenting), "user_id", "left_semi")
    subscriptions = subscriptions.join(F.broadcast(consenting), "user_id", "left_semi")

    # Step 2: filter early (pushdown), then hash ids and mask names; the
    # original ids and names are dropped. Written out as the anonymized
    # dataset, as the notebook displays it (and as dbt's staging table is).
    plausible = vitals.where(F.col("heart_rate").between(r["heart_rate_min_bpm"],
                                                         r["heart_rate_max_bpm"]))
    masked = plausible.select(
        user_hash.alias("user_pseudonym_id"),
        device_hash.alias("device_pseudonym_id"),
        name_mask.alias("full_name_masked"),
        "city", "reading_ts", "heart_rate",
    )
    masked_path = f"{workdir}/vitals_masked"
    masked.write.mode("overwrite").parquet(masked_path)
    masked = spark.read.parquet(masked_path)

    # Step 3: exact duplicates once, then 10-minute tumbling windows.
    readings = (
        masked.groupBy("user_pseudonym_id", "reading_ts", "heart_rate")
        .agg(F.min("city").alias("city"))
        .withColumn("window_start",
                    F.floor(F.unix_seconds("reading_ts") / window_seconds) * window_seconds)
    )
    windows = readings.groupBy("user_pseudonym_id", "window_start").agg(
        F.count(F.lit(1)).alias("n"),
        F.min("heart_rate").alias("min_hr"),
        F.max("heart_rate").alias("max_hr"),
    )
    # Step 4: frozen windows, removed with a left anti join.
    frozen = windows.where((F.col("n") >= r["frozen_min_readings"])
                           & (F.col("max_hr") == F.col("min_hr")))
    valid = readings.join(frozen.select("user_pseudonym_id", "window_start"),
                          ["user_pseudonym_id", "window_start"], "left_anti")

    # Step 5: hashed subscriptions, one (the latest) per user.
    latest = Window.partitionBy("user_pseudonym_id").orderBy(
        F.col("start_date").desc(), F.col("_source_file").desc(), F.col("_source_line").desc())
    current = (
        subscriptions.select(user_hash.alias("user_pseudonym_id"), "subscription_type",
                             "start_date", "_source_file", "_source_line")
        .withColumn("rank", F.row_number().over(latest))
        .where("rank = 1")
        .select("user_pseudonym_id", "subscription_type")
    )

    # Step 6: broadcast join (the subscriptions are small).
    joined = valid.join(F.broadcast(current), "user_pseudonym_id", "inner")

    # Step 7: groupBy, small cells suppressed, pivot.
    cells = joined.groupBy("city", "subscription_type").agg(
        F.countDistinct("user_pseudonym_id").alias("n_users"),
        F.count(F.lit(1)).alias("n_readings"),
        F.avg(F.col("heart_rate").cast("double")).alias("avg_hr"),
    )
    cells.createOrReplaceTempView("bench_cells")
    try:
        return [row.asDict() for row in spark.sql("with " + matrix_from_cells_sql("bench_cells")).collect()]
    finally:
        # In a shared session (the tests), leave no temp view behind.
        spark.catalog.dropTempView("bench_cells")


def matrix_from_cells_sql(cells: str) -> str:
    """The common tail of every variant, from ``cells`` (city,
    subscription_type, n_users, n_readings, avg_hr) to the matrix, as
    fct_city_heart_rate and fct_city_stress_matrix do it: a cell with fewer
    than min_cell_users users is suppressed, and when exactly one cell is,
    the published cell with the fewest users (then readings, city, tier) is
    suppressed with it (complementary suppression). CTEs and a final select,
    to follow ``with`` or a CTE list."""
    k = rules()["min_cell_users"]
    pivots = ",\n       ".join(
        f"max(case when subscription_type = '{t}' and not is_suppressed then avg_hr end) as {c}"
        for t, c in tier_columns())
    return f"""
ranked as (
    select *,
           n_users < {k} as is_small,
           count_if(n_users < {k}) over () as n_small_cells,
           row_number() over (
               order by n_users >= {k}, n_users, n_readings, city, subscription_type) as users_rank
    from {cells}
),
suppressed as (
    select city, subscription_type, avg_hr,
           is_small or (n_small_cells = 1 and users_rank = 2) as is_suppressed
    from ranked
)
select city,
       {pivots}
from suppressed
group by city
"""


def sql_query() -> str:
    """Variant (d): one query, raw -> matrix."""
    r = rules()
    w = r["frozen_window_minutes"] * 60
    consenting = consenting_users_sql()
    return f"""
with plausible as (
    select user_id, city, reading_ts, heart_rate,
           floor(unix_seconds(reading_ts) / {w}) as window_id
    from {contract.VITALS.table}
    where heart_rate between {r['heart_rate_min_bpm']} and {r['heart_rate_max_bpm']}
      and user_id in ({consenting})
    -- one shuffle for both the dedupe and the window test below
    distribute by user_id, window_id
),
deduplicated as (
    select user_id, window_id, reading_ts, heart_rate, min(city) as city
    from plausible
    group by user_id, window_id, reading_ts, heart_rate
),
flagged as (
    select *,
           count(*) over (partition by user_id, window_id) >= {r['frozen_min_readings']}
           and max(heart_rate) over (partition by user_id, window_id)
             = min(heart_rate) over (partition by user_id, window_id) as in_frozen_window
    from deduplicated
),
current_subscription as (
    select user_id,
           max_by(subscription_type, struct(start_date, _source_file, _source_line))
               as subscription_type
    from {contract.SUBSCRIPTIONS.table}
    where user_id in ({consenting})
    group by user_id
),
cells as (
    select /*+ broadcast(s) */ f.city, s.subscription_type,
           count(distinct f.user_id) as n_users,
           count(*) as n_readings,
           avg(cast(f.heart_rate as double)) as avg_hr
    from flagged f
    join current_subscription s on f.user_id = s.user_id
    where not f.in_frozen_window
    group by f.city, s.subscription_type
),
{matrix_from_cells_sql("cells")}"""


def sql_job(spark) -> list[dict[str, Any]]:
    return [row.asDict() for row in spark.sql(sql_query()).collect()]


def run_variant(spark, variant: str, workdir: str, landing: Path | None = None) -> list[dict[str, Any]]:
    if variant == "dataframe":
        return notebook_job(spark, workdir, use_python_udfs=False)
    if variant == "python_udf":
        return notebook_job(spark, workdir, use_python_udfs=True)
    if variant == "sql":
        return sql_job(spark)
    if variant == "landing_csv":
        if landing is None:
            raise ValueError("variant landing_csv needs the landing directory (--landing)")
        return notebook_job(spark, workdir, use_python_udfs=False, landing=landing)
    raise ValueError(f"unknown variant {variant!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sflux.bench.jobs",
        description="Run one benchmark variant in this process's own Spark session "
                    "and write its matrix and timings as JSON (used by scripts/benchmark.py).")
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("--result", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--landing", type=Path, default=None,
                        help="landing directory (the generator's output) for variant landing_csv")
    parser.add_argument("--workdir", default=None,
                        help="directory for intermediate files (default: <data dir>/bench_work)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    from sflux.core.spark import get_spark

    spark = get_spark()
    session_ready = time.perf_counter()
    workdir = args.workdir or str(paths.data_dir() / "bench_work")
    matrix = run_variant(spark, args.variant, workdir, args.landing)
    done = time.perf_counter()
    spark.stop()
    args.result.write_text(json.dumps({
        "variant": args.variant,
        "session_seconds": session_ready - started,
        "job_seconds": done - session_ready,
        "matrix": matrix,
    }, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
