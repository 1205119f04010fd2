"""The loader's fast structural check of a CSV line (one regex match,
layout.csv_line_re) must accept exactly the lines its detailed checks
(quoted fields removed, then no quote left and the right field count) find
nothing wrong with: it decides which lines skip them. Python's `re` has the
same possessive quantifiers and atomic groups as Java's, so no Spark needed.
"""

from __future__ import annotations

import random
import re

from sflux.ingest import layout


def detailed_ok(line: str, fields: int) -> bool:
    """What sflux.ingest.parsing checks when the fast match fails."""
    unquoted = re.sub(layout.QUOTED_FIELD_RE, r"\1", line) if '"' in line else line
    return '"' not in unquoted and len(unquoted.split(",")) == fields


def test_the_fast_check_agrees_with_the_detailed_one_on_random_lines():
    rng = random.Random(13)
    alphabet = ['"', '"', ",", ",", "a", " ", "é", "\t"]
    checked = {True: 0, False: 0}
    for fields in (2, 3, 6):
        pattern = re.compile(layout.csv_line_re(fields))
        for _ in range(20_000):
            line = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
            expected = detailed_ok(line, fields)
            assert (pattern.search(line) is not None) == expected, (fields, line)
            checked[expected] += 1
    assert min(checked.values()) > 1_000  # both outcomes are exercised


def test_the_fast_check_on_the_contract_examples():
    ok = re.compile(layout.csv_line_re(6))
    for line in ['u1,"Dupont, Jean",Zürich,d1,2024-01-01 10:00:00,72',
                 'u2,"Jean ""JJ"" Martin",Kraków,d2,2024-01-01 23:59:59,',
                 '"user_000001","Blom, Aya","\'s-Hertogenbosch","dev-1",2026-11-01 00:00:04,50',
                 ",,,,,", 'u5,"a,b,""c""",Łódź,"d,5",2024-01-03 08:00:00,180']:
        assert ok.search(line), line
    for line in ['u1,"Ann,Paris,d1,2024-01-01 10:00:00,70', 'u1,An"n,Paris,d1,2024-01-01 10:00:00,70',
                 'u1,"Ann" ,Paris,d1,2024-01-01 10:00:00,70', "u1,Ann,Paris,d1,2024-01-01 10:00:00",
                 "", "   ", "u1,Ann,Paris,d1,2024-01-01 10:00:00,70,1"]:
        assert not ok.search(line), line
