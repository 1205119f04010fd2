"""The append-only audit log: one JSON object per line, mode 0600.

API requests and token acts (issue, revoke, list) go to the same file, so
one file answers "who did what through the API". Each record is written with
a single write(2) on a file opened with O_APPEND, so the API's requests and a
concurrent CLI never interleave inside a line. No record ever holds a bearer
token: the fields written are chosen here, and text that came from a client
is scrubbed of anything shaped like one.
"""

from __future__ import annotations

import json
import os
import re
import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sflux.api.errors import ConfigError

# Wider than tokens.TOKEN_PATTERN on purpose: a truncated or padded token in
# a URL is still a secret.
_TOKEN_LIKE = re.compile(r"sfx_[A-Za-z0-9_-]+")
MAX_TEXT = 200


def scrub(text: str) -> str:
    """Client-supplied text made safe to keep: token-shaped runs redacted,
    length bounded."""
    cleaned = _TOKEN_LIKE.sub("sfx_[redacted]", text)
    return cleaned if len(cleaned) <= MAX_TEXT else cleaned[:MAX_TEXT] + "...[truncated]"


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        mode = stat.S_IMODE(os.fstat(self._fd).st_mode)
        if mode & 0o077:
            os.close(self._fd)
            raise ConfigError(f"audit log {path} has mode {mode:04o}; it must be private: chmod 600 {path}")

    def write(self, event: str, **fields: Any) -> None:
        record = {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "event": event, **fields}
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str) + "\n"
        os.write(self._fd, line.encode("utf-8"))

    def close(self) -> None:
        os.close(self._fd)
