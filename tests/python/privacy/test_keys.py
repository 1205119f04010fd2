"""sflux.privacy.keys, the one Python home of the key: its SQL is the dbt
macros' SQL to the letter, and its Python pseudonym is what Spark computes."""

from __future__ import annotations

import hashlib
import hmac
import signal

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


# --------------------------------------------------------------------------
# The registered key: a wrong key of valid length is refused by every entry
# point that uses the key, before it is used.


def render_macro(name: str, *args: str) -> str:
    """A macro of macros/privacy/ rendered with the key macros it calls."""
    files = ("pseudonym_key.sql", "previous_pseudonym_key.sql", f"{name}.sql")
    module = jinja2.Environment().from_string(
        "".join((MACROS / f).read_text(encoding="utf-8") for f in files)).module
    return str(getattr(module, name)(*args)).strip()


def test_fingerprint_and_record_secret_are_the_dbt_macros():
    key = render_macro("pseudonym_key")
    previous = render_macro("previous_pseudonym_key")
    assert keys.fingerprint_sql() == render_macro("pseudonym_key_fingerprint", key)
    assert keys.record_secret_sql() == render_macro("erasure_record_secret", key)
    assert previous == keys.key_sql(keys.PREVIOUS_KEY_ENV)


def test_check_registered_accepts_only_the_latest_key():
    one, two, stranger = keys.fingerprint("1" * 64), keys.fingerprint("2" * 64), keys.fingerprint("x" * 64)
    registered = [(1, one), (2, two)]
    assert keys.check_registered(registered, two, "do it") == 2
    for current, message in ((stranger, "is not the registered pseudonymization key"),
                             (one, "holds the retired key of version 1"),
                             (None, "is not set in the Spark driver's environment")):
        with pytest.raises(UserError, match=message) as caught:
            keys.check_registered(registered, current, "do it")
        assert "\n" not in str(caught.value)
    with pytest.raises(UserError, match="no key is registered yet"):
        keys.check_registered([], two, "do it")
    # A rotation in progress: the new key is accepted only with the latest as previous.
    assert keys.check_registered(registered, stranger, "do it", previous=two) == 3
    with pytest.raises(UserError, match="not the registered"):
        keys.check_registered(registered, stranger, "do it", previous=one)


def test_cluster_start_refuses_a_wrong_key_before_starting_anything(tmp_path, monkeypatch, capsys, pseudonym_key):
    """The registry is read from its files (the cluster's Thrift server will
    own the metastore); no JVM is started, no state written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from script_loader import load_script

    registry = tmp_path / "data" / "warehouse" / "raw.db" / "pseudonym_key_registry"
    registry.mkdir(parents=True)
    pq.write_table(pa.table({"key_version": pa.array([1], pa.int32()),
                             "key_fingerprint": [keys.fingerprint(pseudonym_key)]}), registry / "part-0.parquet")
    assert keys.require_registered_key_files(tmp_path / "data" / "warehouse", "start") == 1
    monkeypatch.setenv(keys.KEY_ENV, "w" * 64)
    cli = load_script("spark_cluster")
    handler = signal.getsignal(signal.SIGTERM)  # the CLI installs its own
    try:
        assert cli.main(["start", "--data-dir", str(tmp_path / "data"), "--quiet"]) == 2
    finally:
        signal.signal(signal.SIGTERM, handler)
    err = capsys.readouterr().err
    assert "is not the registered pseudonymization key" in err and err.count("\n") == 1
    assert not (tmp_path / "data" / "spark-cluster").exists()
    # During a rotation the new key starts the cluster when the previous one is the registered key.
    monkeypatch.setenv(keys.PREVIOUS_KEY_ENV, pseudonym_key)
    assert keys.require_registered_key_files(tmp_path / "data" / "warehouse", "start") == 2


def test_the_spark_key_is_the_registered_one(spark, built):
    assert keys.require_registered_key(spark, "read") == 1


@pytest.mark.mutates_warehouse
def test_every_entry_point_refuses_a_wrong_key(spark, built, consenting_users, monkeypatch, capsys):
    """gdpr export / erase / verify-erasure and detokenize, with a wrong key
    of full length in the Spark driver: each stops with a one-line error,
    changes nothing, prints no value, and audits the refusal. (The loader:
    test_loader.py; the cluster: above; the dbt rotation hook:
    tests/python/gdpr/test_rotation_after_erasure.py.)"""
    from conftest import WRONG_KEY_ENV
    from script_loader import load_script
    from sflux.gdpr.residues import exports_dir

    gdpr = load_script("gdpr")
    detokenize = load_script("detokenize")
    member = sorted(consenting_users)[-1]
    bundles = len(list(exports_dir().rglob("manifest.json")))
    token = spark.sql("select token from raw.token_vault limit 1").first()[0]
    held = spark.sql("select count(*) from raw.vitals where user_id = :u", args={"u": member}).first()[0]
    monkeypatch.setattr(keys, "KEY_ENV", WRONG_KEY_ENV)
    for argv in (["export", "--user-id", member], ["erase", "--user-id", member, "--no-rebuild"],
                 ["verify-erasure", "--user-id", member]):
        assert gdpr.main(argv, spark=spark) == 2, argv
        captured = capsys.readouterr()
        assert "is not the registered pseudonymization key" in captured.err, argv
        assert captured.err.count("\n") == 1 and "FOUND" not in captured.out and "nothing" not in captured.out
    assert len(list(exports_dir().rglob("manifest.json"))) == bundles
    assert spark.sql("select count(*) from raw.vitals where user_id = :u", args={"u": member}).first()[0] == held
    assert detokenize.main(["--token", token, "--reason", "DPO request 2026-17"], spark=spark) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "is not the registered pseudonymization key" in captured.err
    audit = [r.asDict() for r in spark.sql(
        "select operation, status, subject_pseudonym_id from raw.privacy_audit_log"
        " order by occurred_at").collect()][-4:]
    assert audit == [{"operation": op, "status": "rejected_key_mismatch", "subject_pseudonym_id": None}
                     for op in ("export", "erase", "verify_erasure", "detokenize")]
