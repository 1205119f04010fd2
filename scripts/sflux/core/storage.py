"""Who may read the warehouse on disk: the OS is the only access control
open-source Spark leaves us, so the pipeline's data is private to its OS user.

Every process that writes the warehouse (the scripts, dbt through the
profile, the cluster's JVMs) runs with umask 077, and Spark's own Hadoop
file system creates directories with ``fs.permissions.umask-mode`` (set in
profiles/profiles.yml), not with the process umask: both are needed. What
an older run left readable is tightened by `restrict` before each start.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077

# Relative to the data dir: what identifies anyone (raw.db), what describes
# every table and may hold view text (metastore_db, derby.log), and where
# Spark spills and shuffles raw rows (tmp) or the cluster keeps its logs.
PRIVATE_UNDER_DATA_DIR = ("warehouse/raw.db", "metastore_db", "derby.log", "tmp", "spark-cluster")


def private_umask() -> None:
    """Files and directories created from now on by this process and its
    children (a JVM included) are its owner's only."""
    os.umask(PRIVATE_UMASK)


def private_paths(data_dir: Path) -> list[Path]:
    return [data_dir / rel for rel in PRIVATE_UNDER_DATA_DIR]


def _walk(root: Path):
    if not root.exists() and not root.is_symlink():
        return
    yield root
    if root.is_dir() and not root.is_symlink():
        for parent, dirs, files in os.walk(root):
            for name in dirs + files:
                yield Path(parent) / name


def restrict(data_dir: Path) -> None:
    """chmod the private paths under `data_dir`: directories 0700, files 0600
    (symlinks are left alone: chmod would follow them out of the tree)."""
    for root in private_paths(data_dir):
        for path in _walk(root):
            if path.is_symlink():
                continue
            os.chmod(path, 0o700 if path.is_dir() else 0o600)


def readable_by_others(root: Path) -> list[tuple[Path, str]]:
    """Every path under `root` (itself included) with a group or other
    permission bit, as (path, mode like 0755)."""
    loose = []
    for path in _walk(root):
        mode = path.lstat().st_mode
        if not stat.S_ISLNK(mode) and mode & 0o077:
            loose.append((path, f"{stat.S_IMODE(mode):04o}"))
    return loose
