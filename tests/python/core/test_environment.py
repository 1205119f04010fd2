"""Setup checks that must fail clearly, in one line, before Spark starts."""

from __future__ import annotations

import subprocess
import sys

from conftest import SCRIPTS


def test_missing_java_is_one_line_with_install_hint(tmp_path):
    env = {"PATH": str(tmp_path), "JAVA_HOME": str(tmp_path / "no-jdk"), "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "check_java.py")], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "Java not found" in lines[0] and "openjdk-17" in lines[0]


def test_present_java_passes():
    proc = subprocess.run([sys.executable, str(SCRIPTS / "check_java.py")], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
