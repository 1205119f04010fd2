"""The warehouse on disk is its OS user's only where it identifies anyone:
the raw zone, the metastore, Spark's scratch space, the cluster's run dir
and .secrets/. Open-source Spark has no GRANT, so these modes are what
stops another local user from reading `raw` (or the files under it) at all.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sflux.core import storage

from dbt_helpers import REPO_ROOT


def test_the_built_warehouse_keeps_raw_the_metastore_and_scratch_private(built, test_root: Path):
    data = test_root / "data"
    raw_tables = [p for p in (data / "warehouse" / "raw.db").iterdir() if p.is_dir()]
    assert len(raw_tables) >= 5, raw_tables  # loaded by the loader and built by dbt
    for root in storage.private_paths(data):
        if root.name == "spark-cluster":
            continue  # the embedded warehouse has no cluster; test_thrift checks that one
        assert root.exists(), root
        assert storage.readable_by_others(root) == [], f"{root} is readable by other OS users"
    # Every raw table directory itself, and their files, not just raw.db.
    assert all(p.stat().st_mode & 0o777 == 0o700 for p in raw_tables)


def test_restrict_closes_what_an_older_run_left_open(tmp_path: Path):
    table = tmp_path / "warehouse" / "raw.db" / "users" / "part=1"
    table.mkdir(parents=True)
    (table / "part-0.parquet").write_bytes(b"x")
    (tmp_path / "metastore_db").mkdir()
    (tmp_path / "derby.log").write_text("")
    analytics = tmp_path / "warehouse" / "analytics.db"
    analytics.mkdir()
    for path in [*tmp_path.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    assert storage.readable_by_others(tmp_path / "warehouse" / "raw.db")
    storage.restrict(tmp_path)
    for root in storage.private_paths(tmp_path):
        assert storage.readable_by_others(root) == [], root
    assert (table / "part-0.parquet").stat().st_mode & 0o777 == 0o600
    # What no one needs to hide is left as it was.
    assert analytics.stat().st_mode & 0o777 == 0o755


def test_restrict_does_not_follow_a_symlink_out_of_the_tree(tmp_path: Path):
    outside = tmp_path / "outside.txt"
    outside.write_text("")
    os.chmod(outside, 0o644)
    raw = tmp_path / "data" / "warehouse" / "raw.db"
    raw.mkdir(parents=True)
    (raw / "link").symlink_to(outside)
    storage.restrict(tmp_path / "data")
    assert outside.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("target, variable, file", [
    ("key", "KEY_FILE", "pseudonym.key"),
    ("thrift-password", "THRIFT_PASSWORD_FILE", "thrift.password"),
])
def test_make_creates_the_secrets_owner_only(tmp_path: Path, target, variable, file):
    secret = tmp_path / ".secrets" / file
    env = {**os.environ, "MAKEFLAGS": ""}
    subprocess.run(["make", "-s", "-f", str(REPO_ROOT / "Makefile"), target, f"{variable}={secret}"],
                   cwd=tmp_path, env=env, check=True, capture_output=True, text=True, timeout=60)
    assert secret.parent.stat().st_mode & 0o777 == 0o700
    assert secret.stat().st_mode & 0o777 == 0o600
    assert len(secret.read_text().strip()) >= 32
