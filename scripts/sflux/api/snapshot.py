"""Consistent snapshots of a mart's parquet directory, cached.

dbt rebuilds a mart under the API's feet: dbt-spark drops a parquet table and
re-creates it, and Spark's file committer first writes under `_temporary/`
(or `.spark-staging-*` for dynamic partition overwrite), then moves the
files in and writes `_SUCCESS` last. So a directory is *complete* when it has
`_SUCCESS` and no in-progress directory, and a read is *consistent* when the
directory's signature (every data file's path, size and mtime) is the same
before and after reading it. Anything else is retried, and while a mart is
being rebuilt the last consistent snapshot keeps being served; a process
that has never seen a complete one answers 503.

Snapshots are cached by signature, so a request costs one directory listing
until dbt writes a new version, and the next request after that serves it:
no restart needed.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from sflux.api.settings import TENANT_COLUMN

Signature = tuple[tuple[str, int, int], ...]
IN_PROGRESS_DIRS = ("_temporary",)
IN_PROGRESS_PREFIX = ".spark-staging"
SUCCESS_MARKER = "_SUCCESS"


class MartUnavailable(Exception):
    """The mart has never been seen complete by this process."""


class NotTenantScoped(Exception):
    """A tenant-scoped read of a mart that has no tenant column."""


class TenantLeak(Exception):
    """A filtered read returned a row of another tenant: never served."""


_versions = itertools.count(1)


@dataclass(frozen=True)
class Snapshot:
    table_name: str
    signature: Signature
    table: pa.Table
    # Unique per snapshot read: what rendered answers are cached by.
    version: int = field(default_factory=lambda: next(_versions))


def signature(root: Path) -> Signature | None:
    """The data files of a complete table directory with their sizes and
    mtimes, sorted; None if the directory is missing or being written.
    Hidden (`.`) and metadata (`_`) files are not data, as for Spark."""
    try:
        with os.scandir(root) as listing:
            entries = list(listing)
        names = {e.name for e in entries}
        if SUCCESS_MARKER not in names or any(
            n in IN_PROGRESS_DIRS or n.startswith(IN_PROGRESS_PREFIX) for n in names
        ):
            return None
        success = os.stat(os.path.join(root, SUCCESS_MARKER))
        files = [(SUCCESS_MARKER, success.st_size, success.st_mtime_ns)]
        _collect_data_files(entries, "", files)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return tuple(sorted(files))


def _collect_data_files(entries: list[os.DirEntry], prefix: str, out: list[tuple[str, int, int]]) -> None:
    for entry in entries:
        if entry.name.startswith(("_", ".")):
            continue
        if entry.is_dir(follow_symlinks=False):  # a partition directory, key=value
            with os.scandir(entry.path) as listing:
                _collect_data_files(list(listing), f"{prefix}{entry.name}/", out)
        else:
            st = entry.stat(follow_symlinks=False)
            out.append((prefix + entry.name, st.st_size, st.st_mtime_ns))


def read_files(root: Path, sig: Signature, tenant: str | None) -> pa.Table:
    """The table made of exactly the files of `sig`. With a tenant, the
    equality filter is pushed into the parquet scan (row groups and rows of
    other tenants are never materialized) and the result is checked again."""
    files = [str(root / rel) for rel, _, _ in sig if rel != SUCCESS_MARKER]
    if not files:
        raise MartUnavailable(f"{root.name} has no data files")
    dataset = ds.dataset(files, format="parquet", partitioning="hive", partition_base_dir=str(root))
    if tenant is None:
        return dataset.to_table()
    if TENANT_COLUMN not in dataset.schema.names:
        raise NotTenantScoped(root.name)
    column = ds.field(TENANT_COLUMN)
    if dataset.schema.field(TENANT_COLUMN).type != pa.string():
        # A table partitioned by tenant_id=<digits>/ gets an integer column
        # from discovery: compare as text, so "007" never matches 7.
        column = column.cast(pa.string())
    table = dataset.to_table(filter=column == pa.scalar(tenant, pa.string()))
    seen = {str(value) for value in table.column(TENANT_COLUMN).unique().to_pylist()}
    if seen - {tenant}:
        raise TenantLeak(f"{root.name}: a read filtered on one tenant returned another")
    return table


class SnapshotReader:
    """Reads marts as consistent snapshots; thread-safe."""

    def __init__(
        self,
        analytics_dir: Path,
        recheck_seconds: float = 0.0,
        retries: int = 6,
        retry_wait: float = 0.02,
        tenant_cache_size: int = 256,
    ) -> None:
        """`recheck_seconds`: how long a snapshot is served before the
        directory is listed again. Listing costs about as much as the rest of
        a request, so under load a fraction of a second halves the work; a
        new build is then served at most that much later."""
        self.analytics_dir = analytics_dir
        self.recheck_seconds = recheck_seconds
        self.retries = retries
        self.retry_wait = retry_wait
        self._lock = threading.Lock()
        # (table, tenant) -> (snapshot, when its directory was last listed)
        self._cache: LruCache = LruCache(tenant_cache_size)

    def status(self, table_name: str) -> str:
        if signature(self.analytics_dir / table_name) is not None:
            return "ready"
        with self._lock:
            served = self._cache.get((table_name, None)) is not None
        return "rebuilding: serving the previous snapshot" if served else "missing"

    def read(self, table_name: str, tenant: str | None = None) -> Snapshot:
        root = self.analytics_dir / table_name
        key = (table_name, tenant)
        with self._lock:
            cached: Snapshot | None
            cached, checked_at = self._cache.get(key) or (None, -math.inf)
            now = time.monotonic()
            if cached is not None and now - checked_at < self.recheck_seconds:
                return cached
            for attempt in range(self.retries):
                before = signature(root)
                if before is None:
                    break  # being rebuilt: the last complete snapshot stands
                if cached is not None and cached.signature == before:
                    self._cache.put(key, (cached, now))
                    return cached
                try:
                    table = read_files(root, before, tenant)
                except (OSError, pa.ArrowInvalid):
                    # A file vanished or was cut short by a concurrent build.
                    time.sleep(self.retry_wait * (2**attempt))
                    continue
                except pa.ArrowException as exc:
                    raise MartUnavailable(f"analytics.{table_name} cannot be read: {exc}".splitlines()[0]) from None
                if signature(root) == before:
                    snapshot = Snapshot(table_name, before, table)
                    self._cache.put(key, (snapshot, now))
                    return snapshot
                time.sleep(self.retry_wait * (2**attempt))
            if cached is not None:
                return cached
        raise MartUnavailable(
            f"analytics.{table_name} is not built yet or is being rebuilt: run `make build` (dbt build), then retry"
        )


class LruCache:
    """A small bounded mapping, least recently used out first: tenant
    snapshots and rendered answers must not grow without bound when callers
    vary their parameters."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable) -> Any:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def get_or_make(self, key: Hashable, make: Callable[[], Any]) -> Any:
        value = self.get(key)
        if value is None:
            value = make()
            self.put(key, value)
        return value
