"""Writing the landing files: CSV encoding, the vitals sink (one file or one
per day), the output directory and the progress line.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from sflux.core.errors import UserError
from sflux.generate.config import (
    CONSENT_EVENTS_NAME,
    GeneratorConfig,
    MANIFEST_NAME,
    MINUTES_PER_DAY,
    SECONDS_PER_DAY,
    SUBSCRIPTIONS_NAME,
    USERS_NAME,
    VITALS_NAME,
    day_slices,
)
from sflux.generate.population import Population
from sflux.generate.readings import Readings
from sflux.ingest.contract import (
    DATASETS,
    SUBSCRIPTIONS,
    VITALS,
)


def csv_line(values: Sequence[str]) -> bytes:
    """One RFC 4180 line, used for the headers: the contract's names, as is."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue().encode("utf-8")


def vitals_schema() -> pa.Schema:
    """Dictionary-encoded text columns: the writer expands them in C++,
    cheaper than materialising a string per row in Python."""
    text = pa.dictionary(pa.int32(), pa.string())
    types = {"reading_ts": pa.timestamp("s"), "heart_rate": pa.int16()}
    return pa.schema([pa.field(name, types.get(name, text)) for name in VITALS.header])


def vitals_file_names(cfg: GeneratorConfig) -> list[str]:
    """One file, or one per day named by its UTC date (matches vitals*.csv)."""
    if cfg.split == "day":
        days = (cfg.start_date + timedelta(days=d) for d in range(cfg.days))
        return [f"vitals_{day.isoformat()}.csv" for day in days]
    return [VITALS_NAME]


class VitalsSink:
    """Writes vitals rows to one file, or one per day, via temporary names
    the loader's globs cannot match; `commit` renames them into place."""

    def __init__(self, out: Path, cfg: GeneratorConfig) -> None:
        self.out = out
        self.split_by_day = cfg.split == "day"
        self.names = vitals_file_names(cfg)
        self.rows = [0] * len(self.names)
        self.schema = vitals_schema()
        # Arrow's default batch of 1024 rows formats several times slower
        # than 8192 (measured); larger batches get slower again.
        options = pacsv.WriteOptions(include_header=False, quoting_style="needed", batch_size=8192)
        self.streams = []
        self.writers = []
        for name in self.names:
            stream = pa.OSFile(str(self._partial(name)), "wb")
            stream.write(csv_line(VITALS.header))
            self.streams.append(stream)
            self.writers.append(pacsv.CSVWriter(stream, self.schema, write_options=options))

    def _partial(self, name: str) -> Path:
        return self.out / f".{name}.partial"

    def arrange(self, source: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Output order for a chunk: as is, or grouped by day when splitting
        (a stable sort, so each day keeps its rows' order)."""
        if not self.split_by_day:
            return source
        return source[np.argsort(day[source], kind="stable")]

    def write(self, table: pa.Table, day: np.ndarray) -> None:
        """Append rows; `day` is each row's day, sorted when splitting."""
        if not self.split_by_day:
            self._write(0, table)
            return
        for d, offset, length in day_slices(day, len(self.names)):
            self._write(d, table.slice(offset, length))

    def _write(self, index: int, table: pa.Table) -> None:
        self.writers[index].write_table(table)
        self.rows[index] += table.num_rows

    def close(self) -> None:
        for writer, stream in zip(self.writers, self.streams):
            writer.close()
            stream.close()

    def abort(self) -> None:
        """After a failure: close what can be closed and delete the partial
        files, so a failed run leaves no debris behind."""
        for closable in (*self.writers, *self.streams):
            try:
                closable.close()
            except (OSError, pa.ArrowException):
                pass
        for name in self.names:
            self._partial(name).unlink(missing_ok=True)

    def commit(self) -> dict[str, int]:
        for name in self.names:
            os.replace(self._partial(name), self.out / name)
        return dict(zip(self.names, self.rows))


def readings_table(pop: Population, readings: Readings, source: np.ndarray, first: int, last: int,
                   start_epoch: int, schema: pa.Schema) -> pa.Table:
    """The chunk's rows in output order. Text columns index per-user
    dictionaries holding only this chunk's users, so they stay small."""
    user = readings.user[source]
    local = pa.array(user - first, pa.int32())
    chunk_cities = pop.cities.take(pa.array(pop.city_index[first:last]))
    minute = readings.cell[source] % MINUTES_PER_DAY
    ts = (
        start_epoch
        + readings.day[source].astype(np.int64) * SECONDS_PER_DAY
        + minute * 60
        + pop.second_offset[user]
    )
    columns = [
        pa.DictionaryArray.from_arrays(local, pop.user_ids.slice(first, last - first)),
        pa.DictionaryArray.from_arrays(local, pop.full_names.slice(first, last - first)),
        pa.DictionaryArray.from_arrays(local, chunk_cities),
        pa.DictionaryArray.from_arrays(local, pop.device_ids.slice(first, last - first)),
        pa.array(ts, pa.timestamp("s")),
        pa.array(readings.heart_rate[source], pa.int16(), mask=readings.is_null[source]),
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def write_subscriptions(path: Path, rows: Sequence[tuple[str, str, str]]) -> None:
    """Small file (about one row per user): the csv module is fast enough and
    quotes only when needed."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(SUBSCRIPTIONS.header)
        writer.writerows(rows)


# --- the output directory ---------------------------------------------------


def prepare_out_dir(out: Path, landing_names: Sequence[str]) -> None:
    """Create `out`, and remove landing files a previous run of this
    generator left there that this run will not overwrite (say vitals.csv
    after switching to --split day): the loader would load them too.
    Files the generator did not write are never deleted: refuse instead."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as problem:
        raise UserError(f"cannot create --out {out}: {problem.strerror}") from None
    keep = {SUBSCRIPTIONS_NAME, USERS_NAME, CONSENT_EVENTS_NAME, *landing_names}
    stale = [p for d in DATASETS for p in d.files(out) if p.name not in keep]
    if not stale:
        return
    ours: set[str] = set()
    previous = out / MANIFEST_NAME
    if previous.is_file():
        try:
            ours = set(json.loads(previous.read_text(encoding="utf-8")).get("files", {}))
        except (ValueError, AttributeError):
            ours = set()
    foreign = [p.name for p in stale if p.name not in ours]
    if foreign:
        raise UserError(
            f"{out} holds landing files this generator did not write "
            f"({', '.join(sorted(foreign)[:3])}{', ...' if len(foreign) > 3 else ''}); "
            "remove them or choose another --out"
        )
    for path in stale:
        path.unlink()


# --- progress ---------------------------------------------------------------


class Progress:
    """A one-line bar on stderr, only when someone is watching."""

    def __init__(self, total_users: int, enabled: bool) -> None:
        self.total = total_users
        self.enabled = enabled and sys.stderr.isatty()

    def update(self, users_done: int, rows: int) -> None:
        if not self.enabled:
            return
        share = users_done / self.total
        bar = "#" * int(share * 30)
        sys.stderr.write(f"\r[{bar:<30}] {share:4.0%}  {rows:,} readings")
        sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 70 + "\r")
            sys.stderr.flush()


