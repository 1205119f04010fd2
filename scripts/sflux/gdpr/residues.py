"""A subject's data outside the warehouse: the managed landing files and the
export bundles. Erasure removes it; verification scans it, and says what it
could not scan rather than calling that clean.

- Landing directories under management come from --landing, else
  $SANTEFLUX_LANDING_DIRS (os.pathsep-separated). They are scanned
  recursively: .csv and .jsonl files line by line (the line's user_id
  field; an erasure removes those lines), any other file as text for the
  raw id or the pseudonym (an erasure cannot edit it: it is reported, and
  the erasure stays incomplete until someone removes it). A file that is
  not UTF-8 text is reported as not checked.
- Export bundles live under the exports directory ($SANTEFLUX_EXPORTS_DIR,
  default <repo>/exports, gitignored). A bundle is raw personal data
  outside the warehouse: it expires EXPORT_LIFETIME_DAYS after it is
  written (purge-expired removes it), and an erasure removes the subject's
  bundles at once.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sflux.core import paths
from sflux.core.errors import UserError

LANDING_SUFFIXES = (".csv", ".jsonl")
TEMP_SUFFIX = ".erasing"  # a rewrite in flight (see rewrite_landing)
EXPORTS_ENV = "SANTEFLUX_EXPORTS_DIR"
EXPORT_LIFETIME_DAYS = 7
MANIFEST = "manifest.json"


@dataclass
class Scan:
    """Where the subject was found (place -> occurrences), and what could not
    be checked (one sentence each)."""

    found: dict[str, int] = field(default_factory=dict)
    unchecked: list[str] = field(default_factory=list)

    def add(self, other: Scan) -> None:
        self.found.update(other.found)
        self.unchecked += other.unchecked


# --------------------------------------------------------------------------
# landing files


def landing_dirs(explicit: list[Path] | None) -> list[Path]:
    """The landing directories under management: --landing, else
    $SANTEFLUX_LANDING_DIRS (os.pathsep-separated), else none."""
    if explicit:
        return explicit
    env = os.environ.get("SANTEFLUX_LANDING_DIRS", "")
    return [Path(p) for p in env.split(os.pathsep) if p]


def _data_suffix(path: Path) -> str:
    name = path.name[:-len(TEMP_SUFFIX)] if path.name.endswith(TEMP_SUFFIX) else path.name
    return Path(name).suffix


def landing_files(dirs: list[Path], extra: list[str] = ()) -> tuple[list[Path], list[Path]]:
    """The data files (.csv, .jsonl) under `dirs`, recursively, plus the
    `extra` ones that still exist; and every other file under `dirs`."""
    files: set[Path] = {Path(p) for p in extra if Path(p).is_file()}
    others: list[Path] = []
    for directory in dirs:
        if not directory.is_dir():
            raise UserError(f"landing directory not found: {directory}")
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                (files.add(path) if _data_suffix(path) in LANDING_SUFFIXES else others.append(path))
    return sorted(files), others


def scan_text(files: list[Path], user_id: str, pseudonym: str) -> Scan:
    """Files holding the raw id (as a whole token) or the pseudonym as text;
    a file that is not UTF-8 text cannot be checked."""
    token = re.compile(rf"(^|[^A-Za-z0-9_]){re.escape(user_id)}([^A-Za-z0-9_]|$)", re.M)
    scan = Scan()
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            scan.unchecked.append(f"not UTF-8 text: {path}")
            continue
        if hits := len(token.findall(text)) + text.count(pseudonym):
            scan.found[str(path)] = hits
    return scan


def _line_holds(line: str, suffix: str, user_id: str, header: list[str] | None) -> bool:
    """True when a landing line belongs to the subject (its user_id field)."""
    if suffix == ".jsonl":
        try:
            record = json.loads(line)
        except ValueError:
            return user_id in line  # malformed: be conservative
        return isinstance(record, dict) and record.get("user_id") == user_id
    try:
        fields = next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return user_id in line
    if header and "user_id" in header and len(fields) == len(header):
        return fields[header.index("user_id")] == user_id
    return user_id in fields


def scan_landing(files: list[Path], user_id: str, rewrite: bool) -> dict[str, int]:
    """Lines of the subject per file; with rewrite, removes them (write to a
    temporary file, then an atomic rename: a killed run leaves either the
    old or the new file)."""
    found: dict[str, int] = {}
    for path in files:
        suffix = _data_suffix(path)
        text = path.read_text(encoding="utf-8-sig")
        lines = text.splitlines(keepends=True)
        header = next(csv.reader([lines[0]])) if lines and suffix == ".csv" else None
        body = lines[1:] if header else lines
        kept = [ln for ln in body if not _line_holds(ln.rstrip("\r\n"), suffix, user_id, header)]
        removed = len(body) - len(kept)
        if removed:
            found[str(path)] = removed
            if rewrite:
                tmp = path.with_name(path.name + TEMP_SUFFIX)
                tmp.write_text("".join(lines[:1] if header else []) + "".join(kept), encoding="utf-8")
                os.replace(tmp, path)
    return found


def check_landing(dirs: list[Path], planned: list[str], user_id: str, pseudonym: str) -> Scan:
    """Where the subject is left in the landing files; without directories,
    it says so."""
    files, others = landing_files(dirs, planned)
    scan = scan_text(others, user_id, pseudonym)
    scan.found.update(scan_landing(files, user_id, rewrite=False))
    if not dirs:
        scan.unchecked.insert(0, "landing directories: none named (--landing or SANTEFLUX_LANDING_DIRS)"
                              + (f"; only the {len(files)} file(s) the erasure plan recorded were scanned"
                                 if files else ""))
    return scan


# --------------------------------------------------------------------------
# export bundles


def exports_dir() -> Path:
    return Path(os.environ.get(EXPORTS_ENV) or paths.home() / "exports").resolve()


def bundle_dir(requested: Path | None, pseudonym: str) -> Path:
    """Where an export goes: `requested`, which must be inside the exports
    directory, or a new directory there named by time and pseudonym prefix."""
    root = exports_dir()
    if requested is None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        return root / f"{stamp}-{pseudonym[:12]}"
    out = requested.resolve()
    if out == root or root not in out.parents:
        raise UserError(f"--out {requested} is outside the exports directory {root}: bundles go there "
                        f"(gitignored, removed by an erasure, and by purge-expired after "
                        f"{EXPORT_LIFETIME_DAYS} days); set {EXPORTS_ENV} to move it")
    return out


def _manifest(path: Path) -> dict | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) and "subject" in document else None


def scan_exports(user_id: str, pseudonym: str) -> Scan:
    """Files under the exports directory holding the raw id or the pseudonym."""
    root = exports_dir()
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
    return scan_text(files, user_id, pseudonym)


def remove_bundles(user_id: str, pseudonym: str) -> dict[str, int]:
    """Delete every bundle of the subject under the exports directory (a
    directory whose manifest names them); bundle -> files removed."""
    removed: dict[str, int] = {}
    root = exports_dir()
    if not root.is_dir():
        return removed
    for manifest in sorted(root.rglob(MANIFEST)):
        subject = (_manifest(manifest) or {}).get("subject") or {}
        if subject.get("pseudonym") == pseudonym or subject.get("user_id") == user_id:
            removed[str(manifest.parent)] = sum(1 for p in manifest.parent.rglob("*") if p.is_file())
            shutil.rmtree(manifest.parent)
    return removed


def remove_expired_bundles(as_of: datetime) -> list[str]:
    """Delete every bundle whose manifest's expires_at is before `as_of`."""
    root = exports_dir()
    expired = []
    for manifest in sorted(root.rglob(MANIFEST)) if root.is_dir() else []:
        expires = (_manifest(manifest) or {}).get("expires_at")
        if expires and datetime.fromisoformat(expires) < as_of:
            shutil.rmtree(manifest.parent)
            expired.append(str(manifest.parent))
    return expired
