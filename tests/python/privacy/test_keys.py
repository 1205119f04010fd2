"""sflux.privacy.keys, the one Python home of the key: its SQL is the dbt
macros' SQL to the letter, and its Python pseudonym is what Spark computes."""

from __future__ import annotations

import hashlib
import hmac

import jinja2
import pytest

from dbt_helpers import REPO_ROOT
from sflux.core.errors import UserError
from sflux.privacy import keys

MACROS = REPO_ROOT / "macros" / "privacy"


def dbt_pseudonymize(column: str) -> str:
    """macros/privacy/pseudonymize.sql rendered with its pseudonym_key()
    (both are plain Jinja: no dbt context needed)."""
    source = "".join((MACROS / name).read_text(encoding="utf-8") for name in ("pseudonym_key.sql", "pseudonymize.sql"))
    module = jinja2.Environment().from_string(source).module
    return str(module.pseudonymize(column)).strip()


def test_the_sql_is_the_dbt_macro():
    assert keys.pseudonym_sql("user_id") == dbt_pseudonymize("user_id")
    assert keys.key_sql() in keys.pseudonym_sql("user_id")


def test_the_domain_sql_is_the_dbt_macro():
    source = "".join((MACROS / name).read_text(encoding="utf-8")
                     for name in ("pseudonym_key.sql", "domain_pseudonym.sql"))
    module = jinja2.Environment().from_string(source).module
    assert keys.domain_pseudonym_sql("p", "users") == str(module.domain_pseudonym("p", "users")).strip()


def test_the_python_pseudonym_is_hmac_sha256_hex():
    expected = hmac.new(b"k" * 64, b"user_000042", hashlib.sha256).hexdigest()
    assert keys.pseudonym("user_000042", "k" * 64) == expected


def test_a_short_key_is_refused_in_one_line(monkeypatch):
    monkeypatch.setenv(keys.KEY_ENV, "short")
    with pytest.raises(UserError, match="is not set \\(or too short\\): it is needed to find rows; `make key`"):
        keys.require_key("find rows")


def test_spark_and_python_agree(spark, pseudonym_key):
    ids = ["user_000001", "user_42", "ünïcode-id"]
    rows = spark.sql(
        "select " + ", ".join(keys.pseudonym_sql(f":v{i}") for i in range(len(ids))),
        args={f"v{i}": value for i, value in enumerate(ids)},
    ).collect()[0]
    assert list(rows) == [keys.pseudonym(value, pseudonym_key) for value in ids]
    # A domain pseudonym is keyed from the subject pseudonym, and differs from it.
    subject = keys.pseudonym(ids[0], pseudonym_key)
    in_domain = spark.sql(f"select {keys.domain_pseudonym_sql(':p', 'users')}", args={"p": subject}).collect()[0][0]
    assert in_domain == keys.domain_pseudonym(subject, pseudonym_key, "users") != subject
