"""What a load reports: counts per file and per dataset, and the report lines
scripts/load_raw.py prints.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sflux.ingest import contract


@dataclass(frozen=True)
class FileCounts:
    dataset: str
    file: str
    read: int  # data lines, header excluded
    loaded: int
    quarantined: int
    skipped_erased: int = 0  # lines of erased subjects: neither loaded nor quarantined

    @property
    def balanced(self) -> bool:
        return self.read == self.loaded + self.quarantined + self.skipped_erased


@dataclass(frozen=True)
class DatasetCounts:
    dataset: str
    table: str
    files: tuple[FileCounts, ...]

    @property
    def read(self) -> int:
        return sum(f.read for f in self.files)

    @property
    def loaded(self) -> int:
        return sum(f.loaded for f in self.files)

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self.files)

    @property
    def skipped_erased(self) -> int:
        return sum(f.skipped_erased for f in self.files)

    def file(self, name: str) -> FileCounts:
        for counts in self.files:
            if counts.file == name:
                return counts
        raise KeyError(name)


@dataclass(frozen=True)
class LoadResult:
    input_dir: Path
    loaded_at: dt.datetime  # UTC; the _loaded_at / loaded_at of every new row
    datasets: tuple[DatasetCounts, ...]
    erasure_register_applied: bool = False  # a non-empty raw.erasure_register was honoured

    def __getitem__(self, dataset: str) -> DatasetCounts:
        for counts in self.datasets:
            if counts.dataset == dataset:
                return counts
        raise KeyError(dataset)

    @property
    def read(self) -> int:
        return sum(d.read for d in self.datasets)

    @property
    def loaded(self) -> int:
        return sum(d.loaded for d in self.datasets)

    @property
    def quarantined(self) -> int:
        return sum(d.quarantined for d in self.datasets)

    @property
    def skipped_erased(self) -> int:
        return sum(d.skipped_erased for d in self.datasets)


def format_report(result: LoadResult) -> list[str]:
    """The reconciliation table, one line per file and per dataset."""
    rows = [("dataset", "file", "read", "loaded", "quarantined", "erased")]
    for ds in result.datasets:
        for f in ds.files:
            rows.append((ds.dataset, f.file, str(f.read), str(f.loaded), str(f.quarantined),
                         str(f.skipped_erased)))
        label = "(all files)" if ds.files else "(no file: table left as it was)"
        rows.append((ds.dataset, label, str(ds.read), str(ds.loaded), str(ds.quarantined),
                     str(ds.skipped_erased)))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    lines = []
    for r in rows:
        left = "  ".join(r[i].ljust(widths[i]) for i in range(2))
        right = "  ".join(r[i].rjust(widths[i]) for i in range(2, 6))
        lines.append(f"{left}  {right}")
    lines.append(
        f"reconciled: read {result.read} = loaded {result.loaded} "
        f"+ quarantined {result.quarantined} + erased {result.skipped_erased}"
    )
    if result.erasure_register_applied:
        lines.append(
            f"erased subjects: {result.skipped_erased} rows skipped "
            f"(in {contract.ERASURE_REGISTER_TABLE}; not loaded, not quarantined)"
        )
    return lines


