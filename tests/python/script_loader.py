"""The CLIs in scripts/ are files, not part of the installed package: a test
loads one by its path to call its main() in-process, so the CLI reuses the
test session's Spark session (Derby admits one JVM)."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from dbt_helpers import REPO_ROOT

SCRIPTS = REPO_ROOT / "scripts"


def load_script(name: str) -> ModuleType:
    """scripts/<name>.py as a module, loaded once per test session."""
    module_name = f"santeflux_cli_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]
