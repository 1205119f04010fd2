"""Errors the API turns into one-line JSON answers, and the CLIs into one
line on stderr."""

from __future__ import annotations


class ApiError(Exception):
    """A request that cannot be served, with the HTTP status and a message
    that tells the caller what to change."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ConfigError(Exception):
    """A broken personas file, token store or audit log: the operator fixes it."""
