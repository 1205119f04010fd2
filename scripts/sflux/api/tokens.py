"""Bearer tokens, stored only as hashes.

A token is ``sfx_`` + 32 random bytes (URL-safe base64). The store keeps the
SHA-256 of it, never the token: a token has 256 bits of entropy, so a fast
hash is enough (a slow KDF protects guessable passwords, not random keys).
The store is one JSON file, mode 0600 in a 0700 directory, rewritten whole
through a temporary file and an atomic rename under a lock, so a reader (the
API) always sees either the old or the new file. The DPO manages it with
scripts/api_tokens.py; the API only reads it, and notices every change.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import stat
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sflux.api.errors import ApiError, ConfigError
from sflux.api.personas import Persona

TOKEN_PREFIX = "sfx_"
TOKEN_PATTERN = re.compile(r"sfx_[A-Za-z0-9_-]{43}")
# Tenant ids are names chosen by the pipeline: short, and nothing a path or a
# query could interpret.
TENANT_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
TOKEN_ID_PATTERN = re.compile(r"[0-9a-f]{12}")
MAX_VALIDITY_DAYS = 366
STORE_VERSION = 1


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    sha256: str
    persona: str
    tenant: str | None
    issued_at: str
    expires_at: str
    revoked_at: str | None
    issued_by: str
    note: str

    def expired(self, now: datetime) -> bool:
        return now >= datetime.fromisoformat(self.expires_at)


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_private(path: Path) -> None:
    """Refuse a store or audit file that others may read: the hashes are
    not secrets, but who holds which persona and tenant is."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(f"{path} has mode {mode:04o}; it must be private to its owner: chmod 600 {path}")


def read_store(path: Path) -> list[TokenRecord]:
    if not path.exists():
        return []
    check_private(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return [TokenRecord(**entry) for entry in document["tokens"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"token store {path} is damaged ({type(exc).__name__}); restore it from backup") from None


def _write_store(path: Path, records: list[TokenRecord]) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    payload = json.dumps({"version": STORE_VERSION, "tokens": [asdict(r) for r in records]}, indent=1)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, payload.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)


@contextlib.contextmanager
def locked_store(path: Path) -> Iterator[list[TokenRecord]]:
    """The records under an exclusive lock; what the block leaves in the
    list is written back atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    lock_fd = os.open(path.with_name(path.name + ".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        records = read_store(path)
        before = list(records)
        yield records
        if records != before:
            _write_store(path, records)
    finally:
        os.close(lock_fd)


def issue_token(
    path: Path,
    personas: dict[str, Persona],
    persona: str,
    tenant: str | None,
    days: int,
    issued_by: str,
    note: str = "",
    now: datetime | None = None,
) -> tuple[str, TokenRecord]:
    """A new token (returned once, never stored) and its record."""
    if persona not in personas:
        raise ConfigError(f"unknown persona {persona!r}; personas: {', '.join(personas)}")
    if personas[persona].tenant_scoped:
        if tenant is None:
            raise ConfigError(f"persona {persona!r} is tenant-scoped: name the tenant with --tenant")
        if not TENANT_ID_PATTERN.fullmatch(tenant):
            raise ConfigError(f"tenant {tenant!r} is not a tenant id (letters, digits, '_', '.', '-'; at most 64)")
    elif tenant is not None:
        raise ConfigError(f"persona {persona!r} is not tenant-scoped: drop --tenant")
    if not 1 <= days <= MAX_VALIDITY_DAYS:
        raise ConfigError(f"--days must be from 1 to {MAX_VALIDITY_DAYS} (got {days})")
    now = now or utc_now()
    token = new_token()
    record = TokenRecord(
        token_id=secrets.token_hex(6),
        sha256=token_hash(token),
        persona=persona,
        tenant=tenant,
        issued_at=now.isoformat(),
        expires_at=(now + timedelta(days=days)).isoformat(),
        revoked_at=None,
        issued_by=issued_by,
        note=note,
    )
    with locked_store(path) as records:
        records.append(record)
    return token, record


def revoke_token(path: Path, token_id: str, now: datetime | None = None) -> TokenRecord:
    if not TOKEN_ID_PATTERN.fullmatch(token_id):
        raise ConfigError(f"{token_id!r} is not a token id (12 hex digits, as `api_tokens.py list` shows)")
    with locked_store(path) as records:
        for i, record in enumerate(records):
            if record.token_id == token_id:
                if record.revoked_at is None:
                    records[i] = replace(record, revoked_at=(now or utc_now()).isoformat())
                return records[i]
    raise ConfigError(f"no token with id {token_id} in {path}")


class TokenVerifier:
    """The API's read-only view of the store. It re-reads the file whenever
    its identity changes (the CLI replaces it by rename), so an issued or
    revoked token takes effect on the next request, with no restart."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._identity: tuple[int, int, int] | None = None
        self._by_hash: dict[str, TokenRecord] = {}

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._identity, self._by_hash = None, {}
            return
        identity = (st.st_ino, st.st_mtime_ns, st.st_size)
        if identity != self._identity:
            self._by_hash = {r.sha256: r for r in read_store(self.path)}
            self._identity = identity

    def authenticate(self, token: str, now: datetime | None = None) -> TokenRecord:
        """The token's record, or a 401 ApiError saying why not."""
        if not TOKEN_PATTERN.fullmatch(token):
            raise ApiError(401, "invalid token: expected 'Authorization: Bearer sfx_...'")
        try:
            self._refresh()
        except ConfigError as exc:
            # A damaged or world-readable store: refuse everyone rather than
            # trust it, and say it is the operator's problem, not the caller's.
            raise ApiError(503, f"token store unavailable: {exc}") from None
        record = self._by_hash.get(token_hash(token))
        if record is None:
            raise ApiError(401, "invalid token")
        if record.revoked_at is not None:
            raise ApiError(401, "token revoked")
        if record.expired(now or datetime.now(timezone.utc)):
            raise ApiError(401, "token expired")
        return record
