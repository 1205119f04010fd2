"""The pseudonymization key: where it lives, and the one keyed-pseudonym rule.

The key is a secret in the environment (DBT_ENV_SECRET_PSEUDONYM_KEY). SQL
reads it inside the JVM with ``reflect(... getenv ...)``, as the dbt macro
``pseudonym_key`` does, so it is never pasted into a query text, plan, log
or view definition. A pseudonym is lowercase hex of HMAC-SHA256(key, id),
the dbt macro ``pseudonymize`` (macros/privacy/). Every Python module that
keys an id uses this module, so the rule exists once in SQL and once here.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from sflux.core.errors import UserError

KEY_ENV = "DBT_ENV_SECRET_PSEUDONYM_KEY"
# make key writes 64 hex characters; shorter is a placeholder or a typo.
MIN_KEY_LENGTH = 32


def key_sql() -> str:
    """SQL for the key, read by the JVM from its own environment (the dbt
    macro ``pseudonym_key``). KEY_ENV is read at call time, so a test can
    point it at an unset variable."""
    return f"reflect('java.lang.System', 'getenv', '{KEY_ENV}')"


def pseudonym_sql(expression: str) -> str:
    """SQL for the keyed pseudonym of a SQL expression (a quoted column or a
    parameter marker): the dbt macro ``pseudonymize``."""
    return f"lower(hex(hmac({key_sql()}, cast({expression} as string))))"


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


def key_in_env() -> str:
    """The key as this process's environment holds it ('' when unset)."""
    return os.environ.get(KEY_ENV, "")


def require_key(purpose: str) -> None:
    """UserError unless this process's environment holds a full-length key;
    `purpose` says what the key is needed for."""
    if len(key_in_env()) < MIN_KEY_LENGTH:
        raise UserError(f"{KEY_ENV} is not set (or too short): it is needed to {purpose}; "
                        "`make key` creates one in .secrets/pseudonym.key")
