"""Erased subjects at load time: lines whose user_id pseudonymizes to a
pseudonym of raw.erasure_register are skipped, neither loaded nor
quarantined (loader step 2, "Erased subjects"). The key is checked against
raw.pseudonym_key_registry first: with a wrong key no pseudonym would match
and every erased subject would come back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sflux.core.errors import UserError
from sflux.ingest import contract
from sflux.ingest.layout import REGISTER_COLUMN
from sflux.privacy import keys

if TYPE_CHECKING:  # pyspark is imported lazily: pre-flight must stay fast
    from pyspark.sql import DataFrame, SparkSession


def erased_subjects(spark: SparkSession) -> DataFrame | None:
    """The distinct pseudonyms of ``raw.erasure_register``, or None when the
    register is missing or empty. With pseudonyms to honour, the Spark driver
    must hold the registered key: UserError otherwise."""
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
    key_length = spark.sql(f"select coalesce(length({keys.key_sql()}), 0)").first()[0]
    if key_length < keys.MIN_KEY_LENGTH:
        raise UserError(
            f"{table} is not empty: the loader needs {keys.KEY_ENV} (at least "
            f"{keys.MIN_KEY_LENGTH} characters, in the Spark driver's environment) to skip "
            "erased subjects"
        )
    keys.require_registered_key(spark, "skip erased subjects")
    return pseudonyms


def mark_erased(rows: DataFrame, erased: DataFrame) -> DataFrame:
    """_erased: the row's subject is in the register. The register is small
    next to the data: broadcast."""
    from pyspark.sql import functions as F

    subject = F.col(contract.SUBJECT_COLUMN)
    pseudonym = F.when(subject.isNotNull(), F.expr(keys.pseudonym_sql(f"`{contract.SUBJECT_COLUMN}`")))
    hits = erased.select("_pseudonym", F.lit(True).alias("_hit"))
    return (
        rows.withColumn("_pseudonym", pseudonym)
        .join(F.broadcast(hits), "_pseudonym", "left")
        .select(*rows.columns, F.coalesce(F.col("_hit"), F.lit(False)).alias("_erased"))
    )


