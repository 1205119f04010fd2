"""The pseudonymization key: where it lives, the one keyed-pseudonym rule,
and the check that the key in hand is the registered one.

The key is a secret in the environment (DBT_ENV_SECRET_PSEUDONYM_KEY). SQL
reads it inside the JVM with ``reflect(... getenv ...)``, as the dbt macro
``pseudonym_key`` does, so it is never pasted into a query text, plan, log
or view definition. A pseudonym is lowercase hex of HMAC-SHA256(key, id),
the dbt macro ``pseudonymize`` (macros/privacy/). Every Python module that
keys an id uses this module, so the rule exists once in SQL and once here.

A wrong key of valid length is as dangerous as none: every pseudonym it
computes matches nobody, so an export misses rows, an erasure check reports
clean and the loader lets erased subjects back in. So every script that uses
the key first compares its fingerprint, HMAC(key, a fixed label), with the
one the dbt hook ``register_pseudonym_key`` recorded in
raw.pseudonym_key_registry (:func:`require_registered_key`). A fingerprint
is a keyed digest: it proves which key is in hand without revealing it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import TYPE_CHECKING

from sflux.core.errors import UserError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

KEY_ENV = "DBT_ENV_SECRET_PSEUDONYM_KEY"
# Set only during a rotation (the dbt hook re-keys raw.erasure_register with
# it; the cluster may start with the new key while it matches the registry).
PREVIOUS_KEY_ENV = "DBT_ENV_SECRET_PSEUDONYM_KEY_PREVIOUS"
# make key writes 64 hex characters; shorter is a placeholder or a typo.
MIN_KEY_LENGTH = 32
REGISTRY_TABLE = "raw.pseudonym_key_registry"
FINGERPRINT_LABEL = "santeflux:pseudonym-key-fingerprint"
# Derives the AES key of raw.erasure_register's encrypted records.
RECORD_LABEL = "santeflux:erasure-register-record"


def key_sql(env: str | None = None) -> str:
    """SQL for the key, read by the JVM from its own environment (the dbt
    macro ``pseudonym_key``). KEY_ENV is read at call time, so a test can
    point it at another variable."""
    return f"reflect('java.lang.System', 'getenv', '{env or KEY_ENV}')"


def pseudonym_sql(expression: str) -> str:
    """SQL for the keyed pseudonym of a SQL expression (a quoted column or a
    parameter marker): the dbt macro ``pseudonymize``."""
    return f"lower(hex(hmac({key_sql()}, cast({expression} as string))))"


def fingerprint_sql(key_expression: str | None = None) -> str:
    """SQL for the key's fingerprint: the dbt macro ``pseudonym_key_fingerprint``."""
    return f"lower(hex(hmac({key_expression or key_sql()}, '{FINGERPRINT_LABEL}')))"


def record_secret_sql(key_expression: str | None = None) -> str:
    """SQL for the 32-byte AES key of the erasure register's records,
    derived from the pseudonymization key: the dbt macro ``erasure_record_secret``."""
    return f"hmac({key_expression or key_sql()}, '{RECORD_LABEL}')"


def domain_pseudonym_sql(expression: str, domain: str) -> str:
    """SQL for the pseudonym of a subject pseudonym in one dataset's domain
    (the dbt macro ``domain_pseudonym``): HMAC(key, '<domain>:' || pseudonym)."""
    return f"lower(hex(hmac({key_sql()}, concat('{domain}:', cast({expression} as string)))))"


def domain_pseudonym(subject_pseudonym: str, key: str, domain: str) -> str:
    """The same domain pseudonym computed in Python, from the subject pseudonym."""
    return pseudonym(f"{domain}:{subject_pseudonym}", key)


def pseudonym(value: str, key: str) -> str:
    """The same pseudonym computed in Python, for a caller that holds the key
    (the benchmark's Python-UDF variant, tests). Spark's hmac() takes the key
    string as UTF-8 bytes, as here."""
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def fingerprint(key: str) -> str:
    """The key's fingerprint computed in Python (what fingerprint_sql gives)."""
    return pseudonym(FINGERPRINT_LABEL, key)


def key_in_env() -> str:
    """The key as this process's environment holds it ('' when unset)."""
    return os.environ.get(KEY_ENV, "")


def require_key(purpose: str) -> None:
    """UserError unless this process's environment holds a full-length key;
    `purpose` says what the key is needed for."""
    if len(key_in_env()) < MIN_KEY_LENGTH:
        raise UserError(f"{KEY_ENV} is not set (or too short): it is needed to {purpose}; "
                        "`make key` creates one in .secrets/pseudonym.key")


def check_registered(registered: list[tuple[int, str]], current: str | None, purpose: str,
                     previous: str | None = None) -> int:
    """The key version whose fingerprint is `current`, when it is the latest
    registered version; UserError (one line) otherwise. `registered` holds
    (key_version, key_fingerprint) rows of the registry. With `previous` (the
    fingerprint of PREVIOUS_KEY_ENV), a key registered nowhere yet is a
    rotation in progress when `previous` is the latest key: latest + 1."""
    if not registered:
        raise UserError(f"{REGISTRY_TABLE} is missing or empty: no key is registered yet, so "
                        f"{KEY_ENV} cannot be checked before it is used to {purpose}; run "
                        "`make build` first (its on-run-start hook registers the key)")
    latest, latest_fingerprint = max(registered)
    if current is None:
        raise UserError(f"{KEY_ENV} is not set in the Spark driver's environment: it is needed "
                        f"to {purpose}")
    if current == latest_fingerprint:
        return latest
    retired = sorted(version for version, found in registered if found == current)
    if retired:
        raise UserError(f"{KEY_ENV} holds the retired key of version {retired[-1]}, but the "
                        f"warehouse is keyed with version {latest}: use the current key "
                        f"(.secrets/pseudonym.key) to {purpose}")
    if previous is not None and previous == latest_fingerprint:
        return latest + 1
    raise UserError(f"{KEY_ENV} is not the registered pseudonymization key (its fingerprint "
                    f"matches no version in {REGISTRY_TABLE}, latest {latest}); a wrong key "
                    f"would match nobody, so nothing was done: use the key of version {latest} "
                    f"to {purpose}")


def require_registered_key(spark: SparkSession, purpose: str) -> int:
    """The registered version of the key the Spark driver holds; UserError
    unless it is the latest registered key. Only the fingerprint leaves Spark."""
    require_key(purpose)
    registered: list[tuple[int, str]] = []
    if spark.catalog.tableExists(REGISTRY_TABLE):
        registered = [(int(r[0]), str(r[1])) for r in spark.sql(
            f"select key_version, key_fingerprint from {REGISTRY_TABLE}").collect()]
    current = spark.sql(f"select {fingerprint_sql()}").first()[0]
    return check_registered(registered, current, purpose)


def require_registered_key_files(warehouse: Path, purpose: str) -> int | None:
    """The same check for a process that starts Spark later (the cluster):
    the registry is read from its parquet files under `warehouse`, and the
    fingerprints of this process's keys are computed here. None when no key
    is registered yet (a fresh warehouse: the first build registers it)."""
    import pyarrow.parquet as pq

    require_key(purpose)
    schema, table = REGISTRY_TABLE.split(".")
    location = warehouse / f"{schema}.db" / table
    if not location.is_dir():
        return None
    rows = pq.read_table(location, columns=["key_version", "key_fingerprint"]).to_pylist()
    registered = [(int(r["key_version"]), str(r["key_fingerprint"])) for r in rows]
    if not registered:
        return None
    previous = os.environ.get(PREVIOUS_KEY_ENV)
    return check_registered(registered, fingerprint(key_in_env()), purpose,
                            previous=fingerprint(previous) if previous else None)
