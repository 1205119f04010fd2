"""Personal data in free text a person types, such as a detokenization's
--reason, which is stored in the audit log: found with the PII scanner's
value rules (pii_rules.py) and refused, so the audit log does not become a
place where raw ids and contact data pile up.

The text is cut into runs of 1 to MAX_WORDS words (a phone number or a
national id may be written with spaces), and each run is matched whole
against the scanner's value patterns, check digits included. Patterns too
weak without a column name (bare digit postcodes, capitalised names) are
left out: they would refuse ordinary words and numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sflux.privacy.pii_rules import PATTERNS

MAX_WORDS = 6
# Shapes of this project's raw ids (the leak guard's shapes, in
# tests/privacy/assert_no_pii_outside_raw.sql).
RAW_ID_SHAPES = (("user_id", re.compile(r"(?<![A-Za-z0-9])user_[0-9]{6,}")),
                 ("device_id", re.compile(r"(?<![A-Za-z0-9])dev-[0-9a-f]{8}")))
_EDGE = " \t,;()[]{}<>\"'«»“”"
# Identifier-like words: what a raw id looks like (gdpr.USER_ID_PATTERN).
ID_LIKE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{2,127}")


def _python_regex(java: str) -> re.Pattern[str] | None:
    """The pattern in Python's `re`: the Unicode letter class becomes Latin
    letters (inside or outside a class); a pattern that still does not
    compile (other Unicode classes) is skipped."""
    letters = "a-zA-Z\u00c0-\u024f"
    python = java.replace("[\\p{L}", "[" + letters).replace("\\p{L}", f"[{letters}]")
    try:
        return re.compile(python)
    except re.error:
        return None


_RULES = [(p, rx) for p in PATTERNS if not p.needs_hint and (rx := _python_regex(p.regex))]


def _runs(text: str) -> Iterable[str]:
    words = text.split()
    for size in range(1, MAX_WORDS + 1):
        for start in range(len(words) - size + 1):
            run = " ".join(words[start:start + size]).strip(_EDGE)
            yield run.rstrip(".") if run.endswith(".") and not run.endswith("..") else run


def _passes(pattern, value: str) -> bool:
    try:
        return pattern.check is None or bool(pattern.check(value))
    except (ValueError, IndexError):
        return False


def pii_in_text(text: str, known: Iterable[str] = ()) -> list[str]:
    """The kinds of personal data in `text` (sorted; never the values):
    raw-id shapes, the scanner's PII patterns, and any of the `known`
    values (identifiers the caller knows belong to someone) as a whole word."""
    kinds = {kind for kind, shape in RAW_ID_SHAPES if shape.search(text)}
    for value in known:
        if value and re.search(rf"(?<![A-Za-z0-9_]){re.escape(value)}(?![A-Za-z0-9_])", text):
            kinds.add("known_identifier")
    for run in set(_runs(text)):
        for pattern, regex in _RULES:
            if pattern.pii_type not in kinds and regex.search(run) and _passes(pattern, run):
                kinds.add(pattern.pii_type)
    return sorted(kinds)


def id_like_words(text: str) -> list[str]:
    """Words of `text` shaped like a raw id, to look up among the known ids."""
    return sorted({w.strip(_EDGE).rstrip(".") for w in text.split()
                   if ID_LIKE.fullmatch(w.strip(_EDGE).rstrip("."))})
