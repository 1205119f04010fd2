"""The Thrift server's password check, without a cluster: the hash file,
the password rules and javac. The server itself, with wrong and right
passwords, is attacked in test_thrift.py."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sflux.cluster import auth
from sflux.core.errors import UserError


def test_the_password_file_holds_a_salted_hash_owner_only(tmp_path: Path):
    path = auth.write_password_file(tmp_path / "auth" / "thrift.passwd", "pipeline", "p" * 20)
    user, scheme, iterations, salt, digest = path.read_text().strip().split(":")
    assert (user, scheme) == ("pipeline", "pbkdf2-sha256")
    assert digest == hashlib.pbkdf2_hmac("sha256", b"p" * 20, bytes.fromhex(salt), int(iterations)).hex()
    assert "p" * 20 not in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    # Salted: the same password never gives the same line twice.
    assert auth.hash_line("pipeline", "p" * 20) != auth.hash_line("pipeline", "p" * 20)


@pytest.mark.parametrize("value, message", [
    (None, "DBT_ENV_SECRET_THRIFT_PASSWORD is not set"),
    ("", "DBT_ENV_SECRET_THRIFT_PASSWORD is not set"),
    ("short", "is shorter than 16 characters"),
])
def test_a_missing_or_weak_password_stops_with_one_line(monkeypatch, value, message):
    if value is None:
        monkeypatch.delenv(auth.PASSWORD_ENV, raising=False)
    else:
        monkeypatch.setenv(auth.PASSWORD_ENV, value)
    with pytest.raises(UserError, match=message) as raised:
        auth.password_from_env()
    assert "\n" not in str(raised.value) and "make thrift-password" in str(raised.value)


@pytest.mark.parametrize("user", ["", "a:b", "tab\tuser"])
def test_a_user_name_that_would_break_the_file_is_refused(monkeypatch, user):
    monkeypatch.setenv(auth.USER_ENV, user)
    with pytest.raises(UserError, match="is not a user name"):
        auth.thrift_user()


def test_without_javac_the_start_fails_naming_the_fix(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on it
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(UserError, match="javac not found.*openjdk-17-jdk-headless"):
        auth.compile_authenticator(tmp_path, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()
