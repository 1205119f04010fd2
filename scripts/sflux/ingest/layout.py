"""The loader's fixed formats: the regular expressions that type fields, the
Spark reader options, and the lineage and quarantine columns.
"""

from __future__ import annotations

from collections.abc import Callable

from sflux.ingest import contract


Log = Callable[[str], None]

STAGING_DIR = "loader_staging"
HEADER_READ_LIMIT = 64 * 1024  # bytes; a header is far shorter

# One RFC 4180 quoted field, as a whole field: starts the line or follows a
# comma, runs to the closing quote ("" is an escaped quote inside) and is
# followed by a comma or the end of the line. Possessive quantifiers: no
# backtracking, so long lines cannot blow the JVM regex stack.
QUOTED_FIELD_RE = r'(^|,)"[^"]*+(?:""[^"]*+)*+"(?=,|$)'
BLANK_RE = r"^\s*$"
# The characters of Java's \s (BLANK_RE): a field trimmed of them is empty
# exactly when it matches BLANK_RE. Trimming works on Spark's UTF-8 bytes; a
# regex converts every value to a Java String first, which costs more.
BLANK_CHARS = " \t\n\x0b\f\r"
INT_RE = r"^-?[0-9]+$"
# Exactly contract.TIMESTAMP_FORMAT / DATE_FORMAT (a bare cast or
# try_to_timestamp would also accept other shapes, e.g. "+12024-01-01").
TIMESTAMP_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"
DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def csv_line_re(fields: int) -> str:
    """A whole CSV line of exactly ``fields`` fields, each a well-formed
    quoted field (QUOTED_FIELD_RE's) or a field without quotes: exactly the
    lines the detailed checks (quotes, field count) find nothing wrong with,
    in one match. Atomic groups: linear time, whatever the line."""
    field = r'(?>"[^"]*+(?:""[^"]*+)*+"|[^,"]*+)'
    return rf"^(?:{field},){{{fields - 1}}}{field}$"


CSV_OPTIONS = {"quote": '"', "escape": '"', "mode": "PERMISSIVE"}
CORRUPT_COLUMN = "_corrupt_record"
JSON_OPTIONS = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_COLUMN}
BOOL_VALUES = ("true", "false")
SPARK_TYPES = contract.SPARK_TYPES
LINEAGE_COLUMNS = ("_source_file", "_source_line", "_loaded_at")
REGISTER_COLUMN = "subject_pseudonym_id"
QUARANTINE_COLUMNS = (
    ("dataset", "string"),
    ("source_file", "string"),
    ("line_number", "bigint"),
    ("reason", "string"),
    ("raw_line", "string"),
    ("loaded_at", "timestamp"),
)
