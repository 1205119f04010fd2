"""PII scanner for a warehouse schema (by default the restricted ``raw`` zone).

Usage from Python (tests reuse one session)::

    from sflux.privacy import pii_detect
    report = pii_detect.scan(spark, "raw", Path("target/manifest.json"), 2000)
    report.ok, report.undeclared(), "\\n".join(report.format_lines())

The rules (levels, check digits, patterns, name hints) are in pii_rules.py.

How a column is judged
----------------------
1. **Sample.** Each table is sampled deterministically: the ``sample_rows``
   rows with the smallest ``xxhash64`` of the whole row (same data, same
   sample, on any machine). Only atomic columns are scanned, as trimmed
   strings; empty strings count as NULL.
2. **Value patterns**, set-based in Spark: one aggregate query per table
   counts, per column and per pattern, the sampled values that ``rlike`` the
   pattern (Java regex, native functions only). Checks a regex cannot do run
   in Python on the small set of values that matched the shape: Luhn for
   credit cards, ISO 7064 mod 97 for IBANs, and the check digits of the
   national ids (FR NIR key, DE Steuer-ID, PL PESEL, NL BSN 11-proof, ES
   DNI/NIE letter, CH AHV EAN-13, SE personnummer Luhn, CZ/SK rodné číslo
   mod 11; IT codice fiscale is shape-only). A type is *detected by values* when at least ``min_share`` of
   the column's non-NULL sampled values match it.
3. **Name hints**: the column name is matched against hints per type
   (``email``, ``iban``, ``dob``, ``zip``, ``user_id``, ``city``...).
   Weak value patterns only count in a column whose name hints their type:
   bare 4-5 digit postcodes, birth dates (a date, or a string parsing as a
   date, implying an age of 0-120 years) and person names ("Capitalised
   words", "Surname, Given"; alone they would also match cities, browsers
   and product names).
4. **Decision**: the first type detected by values in the order of
   ``VALUE_PRIORITY`` (most specific first, so a valid PESEL is a national
   id, not a phone number); else nothing if the values are already
   protected (64-hex pseudonyms, masked ``jo***@***.com`` / ``J*** D***`` /
   ``***1234``, ``tok_<uuid>`` tokens, ``192.168.1.0/24`` networks); else the
   first type the name hints (date-typed birth columns included), reported
   with evidence "name".

Levels
------
- **HIGH**: direct identifiers, which single out a person on their own:
  email, phone, national id, IBAN, credit card, person name, street address.
- **MEDIUM**: identifiers that single out a person with a little outside
  knowledge: IP address, date of birth, full postcode, raw user/device ids
  (found by name hint, e.g. ``user_id``, ``device_id``).
- **LOW**: quasi-identifiers, harmless alone but identifying in combination:
  city, country, region, gender, age, and the like (name hints only).

Declared policies
-----------------
A column is *declared* when the dbt manifest holds, for the scanned table, a
``treatment`` key in the column's ``meta`` (``columns[c].meta`` or
``columns[c].config.meta``: dbt 1.11 may use either). The table matches a
source node by ``schema`` + ``identifier``, or a model/seed/snapshot node by
``schema`` + ``alias``. Every column with a finding, of any level, must be
declared for the scan to pass; ``keep`` is a valid treatment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sflux.core.errors import UserError
from sflux.privacy.pii_rules import (
    LOW,
    PATTERNS,
    PROPOSED_TREATMENTS,
    PROTECTED_REGEX,
    Pattern,
    VALUE_PRIORITY,
    level_of,
    name_hints,
)


DEFAULT_SAMPLE_ROWS = 2000
DEFAULT_MIN_SHARE = 0.5
# --------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Finding:
    table: str
    column: str
    pii_type: str
    level: str
    share: float | None  # of non-NULL sampled values; None when found by name only
    evidence: str  # "values", "name" or "name+values"
    formats: tuple[str, ...]  # the value formats that matched, e.g. ("de_steuer_id",)
    treatment: str | None  # declared in the manifest; None: undeclared

    @property
    def proposed_meta(self) -> str:
        """The YAML ``meta`` line to declare this column with."""
        if self.level == LOW:
            return "meta: {pii: quasi_identifier, treatment: keep}"
        return f"meta: {{pii: {self.pii_type}, treatment: {PROPOSED_TREATMENTS[self.pii_type]}}}"


@dataclass
class Report:
    schema: str
    sample_rows: int
    manifest: str
    tables: list[str]
    findings: list[Finding]
    tables_without_policy: list[str]  # no column of the table declares a treatment
    tables_unknown_to_dbt: list[str]  # not even in the manifest

    def undeclared(self) -> list[Finding]:
        return [f for f in self.findings if f.treatment is None]

    @property
    def ok(self) -> bool:
        return not self.undeclared()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["undeclared"] = [f"{f.table}.{f.column}" for f in self.undeclared()]
        for item, finding in zip(data["findings"], self.findings):
            item["proposed_meta"] = None if finding.treatment else finding.proposed_meta
        return data

    def format_lines(self) -> list[str]:
        """The human-readable report."""
        lines = [
            f"schema `{self.schema}`: {len(self.tables)} table(s), up to {self.sample_rows} "
            f"sampled rows each; policies from {self.manifest}"
        ]
        header = ("table", "column", "type", "level", "share", "policy")
        rows = [header]
        for f in self.findings:
            share = "name" if f.share is None else f"{f.share:.0%}"
            detected = f"{f.pii_type} ({', '.join(f.formats)})" if f.formats else f.pii_type
            rows.append((f.table, f.column, detected, f.level, share, f.treatment or "UNDECLARED"))
        if self.findings:
            widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
            lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        else:
            lines.append("  no PII found")
        for table in self.tables_without_policy:
            why = (
                "not in the dbt manifest"
                if table in self.tables_unknown_to_dbt
                else "no column declares a treatment"
            )
            lines.append(f"table without any declared policy: {self.schema}.{table} ({why})")
        undeclared = self.undeclared()
        if undeclared:
            lines.append(f"{len(undeclared)} column(s) hold PII without a declared treatment; proposed:")
            for table in dict.fromkeys(f.table for f in undeclared):
                lines.append(f"  {self.schema}.{table}:")
                for f in (f for f in undeclared if f.table == table):
                    lines.append(f"    - name: {f.column}")
                    lines.append(f"      {f.proposed_meta}")
        return lines


# --------------------------------------------------------------------------
# Declared policies (dbt manifest)


@dataclass
class Policies:
    """Declared treatments of one schema, by table then column (lower case)."""

    treatments: dict[str, dict[str, str]] = field(default_factory=dict)
    known_tables: set[str] = field(default_factory=set)


def _column_meta(column: dict[str, Any]) -> dict[str, Any]:
    config_meta = (column.get("config") or {}).get("meta") or {}
    return {**config_meta, **(column.get("meta") or {})}


def load_policies(manifest_path: Path, schema: str) -> Policies:
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"dbt manifest not found: {manifest_path} (run `dbt parse`)") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the dbt manifest {manifest_path}: {exc}") from None
    policies = Policies()
    nodes: Iterable[dict[str, Any]] = [
        *manifest.get("sources", {}).values(),
        *(
            n
            for n in manifest.get("nodes", {}).values()
            if n.get("resource_type") in ("model", "seed", "snapshot")
        ),
    ]
    for node in nodes:
        if str(node.get("schema", "")).lower() != schema.lower():
            continue
        table = node.get("identifier") or node.get("alias") or node.get("name")
        table = str(table).lower()
        policies.known_tables.add(table)
        declared = policies.treatments.setdefault(table, {})
        for name, column in (node.get("columns") or {}).items():
            treatment = _column_meta(column).get("treatment")
            if treatment:
                declared[name.lower()] = str(treatment)
    return policies


# --------------------------------------------------------------------------
# Scanning


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _list_tables(spark, schema: str) -> list[str]:
    if not spark.catalog.databaseExists(schema):
        raise UserError(f"schema `{schema}` does not exist in the metastore")
    return sorted(t.name for t in spark.catalog.listTables(schema) if not t.isTemporary)


def _birth_age_ok(value):  # Column -> Column
    """True when a date-shaped string implies an age of 0-120 years today.
    make_date returns NULL for impossible dates (ANSI is off), where to_date
    with a pattern could raise on lenient legacy matches."""
    from pyspark.sql import functions as F

    iso = value.rlike(r"^\d{4}-\d{2}-\d{2}")
    european = value.rlike(r"^\d{2}[./-]\d{2}[./-]\d{4}$")
    born = F.when(
        iso,
        F.make_date(F.substring(value, 1, 4).cast("int"), F.substring(value, 6, 2).cast("int"),
                    F.substring(value, 9, 2).cast("int")),
    ).when(
        european,
        F.make_date(F.substring(value, 7, 4).cast("int"), F.substring(value, 4, 2).cast("int"),
                    F.substring(value, 1, 2).cast("int")),
    )
    age = F.months_between(F.current_date(), born) / 12
    return age.between(0, 120)


def _patterns_by_type(hints: list[str]) -> dict[str, list[Pattern]]:
    """The formats to try on a column with these name hints, by type."""
    by_type: dict[str, list[Pattern]] = {}
    for pattern in PATTERNS:
        if pattern.needs_hint and pattern.pii_type not in hints:
            continue
        by_type.setdefault(pattern.pii_type, []).append(pattern)
    return by_type


def _checked_formats(candidates: list[str], patterns: list[Pattern]) -> tuple[int, list[str]]:
    """How many candidates pass a format's shape and check digits, and which
    formats they were; a value fitting two formats counts once."""
    hits, formats = 0, []
    for value in candidates:
        for pattern in patterns:
            if re.search(pattern.regex, value) and (pattern.check is None or pattern.check(value)):
                hits += 1
                if pattern.name not in formats:
                    formats.append(pattern.name)
                break
    return hits, formats


@dataclass(frozen=True)
class _ColumnPlan:
    name: str
    hints: list[str]
    patterns: dict[str, list[Pattern]]
    is_date: bool


def _scan_table(
    spark, schema: str, table: str, sample_rows: int, min_share: float, declared: dict[str, str]
) -> list[Finding]:
    from pyspark.sql import functions as F
    from pyspark.sql.types import (
        ArrayType,
        BinaryType,
        DateType,
        MapType,
        StructType,
        TimestampType,
    )

    df = spark.table(f"{_quote(schema)}.{_quote(table)}")
    complex_types = (ArrayType, MapType, StructType, BinaryType)
    fields = [f for f in df.schema.fields if not isinstance(f.dataType, complex_types)]
    if not fields:
        return []
    sample = df.orderBy(F.xxhash64(*[F.col(_quote(c)) for c in df.columns])).limit(sample_rows)

    # One aggregate over the sample. Per column: the non-NULL count, the
    # protected count, and per type either the count matching any of its
    # formats plus one count per format, or (checksummed types) the list of
    # values whose shape matched, checked in Python below.
    aggregates = []
    plans: list[_ColumnPlan] = []
    for index, fld in enumerate(fields):
        value = F.nullif(F.trim(F.col(_quote(fld.name)).cast("string")), F.lit(""))
        hints = name_hints(fld.name)
        is_date = isinstance(fld.dataType, (DateType, TimestampType))
        plan = _ColumnPlan(fld.name, hints, _patterns_by_type(hints), is_date)
        plans.append(plan)
        aggregates.append(F.count(value).alias(f"c{index}_n"))
        aggregates.append(F.count_if(value.rlike(PROTECTED_REGEX)).alias(f"c{index}_protected"))
        for pii_type, patterns in plan.patterns.items():
            shape = value.rlike("|".join(f"(?:{p.regex})" for p in patterns))
            if any(p.check for p in patterns):
                aggregates.append(F.collect_list(F.when(shape, value)).alias(f"c{index}_{pii_type}"))
                continue
            aggregates.append(F.count_if(shape).alias(f"c{index}_{pii_type}"))
            for pattern in patterns:
                per_format = F.count_if(value.rlike(pattern.regex))
                aggregates.append(per_format.alias(f"c{index}_{pii_type}_{pattern.name}"))
        if "date_of_birth" in hints:
            aggregates.append(F.count_if(_birth_age_ok(value)).alias(f"c{index}_date_of_birth"))
    counts = sample.agg(*aggregates).collect()[0].asDict()

    findings = []
    for index, plan in enumerate(plans):
        total = counts[f"c{index}_n"]
        if total == 0:
            continue
        shares: dict[str, float] = {}
        formats: dict[str, list[str]] = {}
        for pii_type, patterns in plan.patterns.items():
            result = counts[f"c{index}_{pii_type}"]
            if isinstance(result, list):
                hits, formats[pii_type] = _checked_formats(result, patterns)
            else:
                hits = result
                formats[pii_type] = [p.name for p in patterns if counts[f"c{index}_{pii_type}_{p.name}"]]
            shares[pii_type] = hits / total
        if "date_of_birth" in plan.hints:
            shares["date_of_birth"] = counts[f"c{index}_date_of_birth"] / total

        detected = next((t for t in VALUE_PRIORITY if shares.get(t, 0.0) >= min_share), None)
        if detected:
            evidence = "name+values" if detected in plan.hints else "values"
        elif counts[f"c{index}_protected"] / total >= min_share:
            continue
        else:
            # A birth-named string column must hold dates to be a birth date
            # ("birth_city" holds a city).
            usable = [h for h in plan.hints if h != "date_of_birth" or plan.is_date]
            if not usable:
                continue
            detected, evidence = usable[0], "name"
        findings.append(
            Finding(
                table=table,
                column=plan.name,
                pii_type=detected,
                level=level_of(detected),
                share=shares.get(detected) if evidence != "name" else None,
                evidence=evidence,
                formats=tuple(formats.get(detected, ())) if evidence != "name" else (),
                treatment=declared.get(plan.name.lower()),
            )
        )
    return findings


def scan(
    spark,
    schema: str,
    manifest_path: Path,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    min_share: float = DEFAULT_MIN_SHARE,
) -> Report:
    """Scan every table of ``schema`` and compare with the manifest's policies."""
    if sample_rows < 1:
        raise UserError("sample_rows must be at least 1")
    if not 0 < min_share <= 1:
        raise UserError("min_share must be in (0, 1]")
    policies = load_policies(manifest_path, schema)
    tables = _list_tables(spark, schema)
    findings: list[Finding] = []
    for table in tables:
        declared = policies.treatments.get(table.lower(), {})
        findings += _scan_table(spark, schema, table, sample_rows, min_share, declared)
    return Report(
        schema=schema,
        sample_rows=sample_rows,
        manifest=str(manifest_path),
        tables=tables,
        findings=findings,
        tables_without_policy=[t for t in tables if not policies.treatments.get(t.lower())],
        tables_unknown_to_dbt=[t for t in tables if t.lower() not in policies.known_tables],
    )
