"""Erasure across processes and a key rotation: an erasure really SIGKILLed
after raw.users, then a rotation to a new key, then the rerun under the new
key, then the old landing files loaded again.

Spark reads the key from its own process environment, so each key needs a
process (a JVM) of its own: two here, on a data dir of their own, with a
tiny landing, building only what the erasure and the rotation need (the
token vault, a seed). The attacks:
- a kill between steps: the subject's national id is findable only
  through raw.users, which the killed run had already rewritten; the rerun
  must still delete their vault token (from the plan it recorded first);
- a wrong key (the new key, before the rotation registers it): gdpr and the
  loader refuse it;
- a rotation with a wrong previous key is refused;
- the rotation: the register is re-keyed, so the rerun under the new key
  resumes the erasure, and reloading the old landing files brings nobody
  back.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SCRIPTS
from dbt_helpers import REPO_ROOT

pytestmark = pytest.mark.spark  # its subprocesses start JVMs: not for `make check`

TESTS = Path(__file__).resolve().parents[1]
ROTATION = ["build", "--select", "city_regions", "--resource-type", "seed", "--full-refresh",
            "--vars", "{pseudonym_key_version: 2}", "--project-dir", str(REPO_ROOT)]

# Process 1, old key: load, run the vault model (registers key 1), erase; the
# fault hook SIGKILLs the process right after raw.users is rewritten.
FIRST = """
import sys
sys.path.insert(0, {tests!r})
from dbt.cli.main import dbtRunner
from script_loader import load_script
assert load_script("load_raw").main(["--input", {landing!r}, "--quiet"]) == 0
assert dbtRunner().invoke(["run", "--select", "token_vault", "--project-dir", {repo!r}]).success
load_script("gdpr").main(["erase", "--user-id", {subject!r}, "--landing", {managed!r}, "--no-rebuild"])
"""

# Process 2, new key (previous key alongside): the attacks, then the rotation,
# the rerun, verification and the reload; facts printed as one JSON line.
SECOND = """
import json, sys
sys.path.insert(0, {tests!r})
from dbt.cli.main import dbtRunner
from script_loader import load_script
from sflux.core.errors import UserError
from sflux.core.spark import get_spark
from sflux.ingest.loader import load_raw

spark = get_spark()
gdpr = load_script("gdpr")
facts = {{}}
def count(sql, **args):
    return spark.sql(sql, args=args).first()[0]
facts["vault_before"] = count("select count(*) from raw.token_vault where token_value = :v", v={national_id!r})
facts["users_before"] = count("select count(*) from raw.users where user_id = :u", u={subject!r})
facts["register_before"] = [list(r) for r in spark.sql(
    "select status, key_version from raw.erasure_register").collect()]
facts["erase_unregistered_key"] = gdpr.main(["erase", "--user-id", {subject!r}, "--no-rebuild"])
try:
    load_raw(spark, {landing!r})
    facts["load_unregistered_key"] = "loaded"
except UserError as exc:
    facts["load_unregistered_key"] = str(exc)
# A wrong previous key: the registry is made to say version 1 was another key.
spark.sql("create table raw.registry_saved using parquet as select * from raw.pseudonym_key_registry")
spark.sql("insert overwrite raw.pseudonym_key_registry"
          " select key_version, repeat('0', 64), registered_at, dbt_invocation_id from raw.registry_saved")
refused = dbtRunner().invoke({rotation!r})
facts["rotation_wrong_previous"] = [refused.success, str(refused.exception)]
spark.sql("insert overwrite raw.pseudonym_key_registry select * from raw.registry_saved")
spark.sql("drop table raw.registry_saved")
facts["rotation"] = dbtRunner().invoke({rotation!r}).success
facts["rerun"] = gdpr.main(["erase", "--user-id", {subject!r}, "--landing", {managed!r}, "--no-rebuild"])
facts["register_after"] = [list(r) for r in spark.sql(
    "select status, key_version from raw.erasure_register order by recorded_at, key_version").collect()]
facts["vault_after"] = count("select count(*) from raw.token_vault where token_value = :v", v={national_id!r})
facts["verify"] = gdpr.main(["verify-erasure", "--user-id", {subject!r}, "--landing", {managed!r}])
facts["skipped_on_reload"] = load_raw(spark, {landing!r}).skipped_erased
facts["users_after_reload"] = count("select count(*) from raw.users where user_id = :u", u={subject!r})
facts["verify_after_reload"] = gdpr.main(["verify-erasure", "--user-id", {subject!r}, "--landing", {managed!r}])
facts["audit"] = [[r[0], r[1], json.loads(r[2])] for r in spark.sql(
    "select operation, key_version, details from raw.privacy_audit_log"
    " where operation like 'key_%' order by occurred_at").collect()]
print("FACTS " + json.dumps(facts))
"""


def test_a_killed_erasure_survives_a_key_rotation_and_old_landing_files_stay_erased(test_root: Path):
    base = test_root / "rotation"
    landing, managed = base / "landing", base / "managed"
    subprocess.run([sys.executable, str(SCRIPTS / "generate_data.py"), "--out", str(landing),
                    "--users", "6", "--days", "1", "--seed", "7", "--quiet"], check=True)
    shutil.copytree(landing, managed)
    with (landing / "users.csv").open(encoding="utf-8", newline="") as handle:
        member = next(csv.DictReader(handle))
    subject, national_id = member["user_id"], member["national_id"]
    env = {**os.environ, "SANTEFLUX_DATA_DIR": str(base / "data"), "DBT_TARGET_PATH": str(base / "target"),
           "DBT_LOG_PATH": str(base / "logs"), "SANTEFLUX_DRIVER_MEMORY": "1g"}
    old_key, new_key = secrets.token_hex(32), secrets.token_hex(32)
    values = {"tests": str(TESTS), "repo": str(REPO_ROOT), "landing": str(landing), "managed": str(managed),
              "subject": subject, "national_id": national_id, "rotation": ROTATION}

    def run(script: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", script.format(**values)], env={**env, **extra},
                              cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=900)

    first = run(FIRST, DBT_ENV_SECRET_PSEUDONYM_KEY=old_key, SANTEFLUX_ERASE_FAULT_AFTER="remove:raw.users")
    assert first.returncode == -signal.SIGKILL, first.stdout[-3000:] + first.stderr[-3000:]
    assert "removed 1 row(s) from raw.users" in first.stdout and "erased:" not in first.stdout

    second = run(SECOND, DBT_ENV_SECRET_PSEUDONYM_KEY=new_key, DBT_ENV_SECRET_PSEUDONYM_KEY_PREVIOUS=old_key)
    lines = [ln for ln in second.stdout.splitlines() if ln.startswith("FACTS ")]
    assert second.returncode == 0 and lines, second.stdout[-4000:] + second.stderr[-4000:]
    facts = json.loads(lines[0][len("FACTS "):])
    # The kill left raw.users rewritten and the vault token in place.
    assert facts["users_before"] == 0 and facts["vault_before"] == 1
    assert facts["register_before"] == [["in_progress", 1]]
    # The new key, before the rotation registers it, is a wrong key.
    assert facts["erase_unregistered_key"] == 2
    assert "is not the registered pseudonymization key" in facts["load_unregistered_key"]
    refused, message = facts["rotation_wrong_previous"]
    assert not refused and "is not the version-1 key" in message
    # The rotation re-keys the register; the rerun under the new key finishes.
    assert facts["rotation"] is True
    assert facts["register_after"] == [["in_progress", 1], ["in_progress", 2], ["complete", 2]]
    assert facts["rerun"] == 0 and facts["vault_after"] == 0 and facts["verify"] == 0
    # Old landing files, reloaded under the new key: the subject stays erased.
    assert facts["skipped_on_reload"] > 0 and facts["users_after_reload"] == 0
    assert facts["verify_after_reload"] == 0
    (registration, v1, first_details), (rotation, v2, details) = facts["audit"]
    assert (registration, v1, rotation, v2) == ("key_registration", 1, "key_rotation", 2)
    assert details["previous_key_version"] == 1 and details["erasure_register_rekeyed"] == 1
    for key in (old_key, new_key):  # neither key is in any audit row or output
        assert key not in json.dumps(facts) and key not in first.stdout + second.stdout
