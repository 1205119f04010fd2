"""Pre-flight of a load, in plain Python before Spark starts: the input
directory, the required datasets and every CSV header (loader step 1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sflux.core.errors import UserError
from sflux.ingest import contract
from sflux.ingest.layout import HEADER_READ_LIMIT


@dataclass(frozen=True)
class LoadPlan:
    input_dir: Path
    files: dict[str, tuple[Path, ...]]  # dataset name -> files, sorted

    def names(self, dataset: str) -> list[str]:
        return [p.name for p in self.files.get(dataset, ())]


def read_header(path: Path) -> str:
    """First line of a file as text: UTF-8, BOM stripped, no line ending."""
    try:
        with path.open("rb") as handle:
            first = handle.readline(HEADER_READ_LIMIT)
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None
    for sep in (b"\n", b"\r"):
        first = first.split(sep, 1)[0]
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: the header line is not UTF-8 text") from None
    return text.removeprefix("\ufeff")


def preflight(input_dir: Path | str) -> LoadPlan:
    """Check the input directory against the contract; raise UserError."""
    directory = Path(input_dir).expanduser()
    if not directory.exists():
        raise UserError(f"input directory {directory} does not exist")
    if not directory.is_dir():
        raise UserError(f"input {directory} is not a directory")
    directory = directory.resolve()
    files: dict[str, tuple[Path, ...]] = {}
    for dataset in contract.DATASETS:
        found = dataset.files(directory)
        if not found and dataset.required:
            patterns = " or ".join(dataset.file_globs)
            raise UserError(
                f"no {dataset.name} file in {directory} (expected {patterns})"
            )
        accepted = [",".join(h) for h in dataset.headers]
        expected = " or ".join(repr(h) for h in accepted)
        for path in found:
            if ":" in path.name:
                raise UserError(f"{path}: Spark cannot read a file name with ':'; rename it")
            if not dataset.has_header:
                if not os.access(path, os.R_OK):
                    raise UserError(f"{path}: cannot read: permission denied")
                continue
            header = read_header(path)
            if header not in accepted:
                shown = header if len(header) <= 200 else header[:200] + "..."
                raise UserError(
                    f"{path}: header does not match the {dataset.name} contract: "
                    f"expected {expected}, found {shown!r}"
                )
        files[dataset.name] = tuple(found)
    return LoadPlan(directory, files)


