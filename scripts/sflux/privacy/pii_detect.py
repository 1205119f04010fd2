"""PII scanner for a warehouse schema (by default the restricted ``raw`` zone).

Usage from Python (tests reuse one session)::

    from sflux.privacy import pii_detect
    report = pii_detect.scan(spark, "raw", Path("target/manifest.json"), 2000)
    report.ok, report.undeclared(), "\\n".join(report.format_lines())

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
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sflux.core.errors import UserError

HIGH, MEDIUM, LOW = "HIGH", "MEDIUM", "LOW"
DEFAULT_SAMPLE_ROWS = 2000
DEFAULT_MIN_SHARE = 0.5


# --------------------------------------------------------------------------
# Check digits (run in Python on the few values whose shape matched)


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def luhn_ok(number: str) -> bool:
    """Luhn mod 10, as used by payment cards and Swedish personnummer."""
    digits = _digits(number)
    if not digits:
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def credit_card_ok(value: str) -> bool:
    return 13 <= len(_digits(value)) <= 19 and luhn_ok(value)


def iban_ok(value: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to
    numbers (A=10), and the result mod 97 must be 1."""
    compact = value.replace(" ", "").upper()
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def fr_nir_ok(value: str) -> bool:
    """Key = 97 - (first 13 characters mod 97); Corsica's 2A/2B count as 19/18."""
    compact = value.replace(" ", "").upper()
    body = compact[:13].replace("2A", "19").replace("2B", "18")
    return 97 - int(body) % 97 == int(compact[13:])


def de_steuer_id_ok(value: str) -> bool:
    """ISO 7064 MOD 11,10 check digit of the German tax id, whose first ten
    digits hold exactly one digit two or three times and no other repeat."""
    digits = _digits(value)
    repeated = [n for n in Counter(digits[:10]).values() if n > 1]
    if len(repeated) != 1 or repeated[0] > 3:
        return False
    product = 10
    for char in digits[:10]:
        total = (int(char) + product) % 10 or 10
        product = total * 2 % 11
    check = (11 - product) % 10
    return check == int(digits[10])


def pl_pesel_ok(value: str) -> bool:
    digits = [int(ch) for ch in value]
    weights = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
    return (10 - sum(d * w for d, w in zip(digits, weights)) % 10) % 10 == digits[10]


def nl_bsn_ok(value: str) -> bool:
    """The "11-proof": weights 9..2 and -1 for the last digit."""
    digits = [int(ch) for ch in _digits(value)]
    total = sum(d * w for d, w in zip(digits, (9, 8, 7, 6, 5, 4, 3, 2, -1)))
    return total % 11 == 0 and total != 0


def es_dni_ok(value: str) -> bool:
    compact = value.replace("-", "").upper()
    number = compact[:-1].replace("X", "0").replace("Y", "1").replace("Z", "2")
    return "TRWAGMYFPDXBNJZSQVHLCKE"[int(number) % 23] == compact[-1]


def ch_ahv_ok(value: str) -> bool:
    """EAN-13 check digit (weights 1, 3 alternating)."""
    digits = [int(ch) for ch in _digits(value)]
    total = sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits[:12]))
    return (10 - total % 10) % 10 == digits[12]


def cz_sk_rodne_cislo_ok(value: str) -> bool:
    """Ten-digit birth numbers (since 1954) are divisible by 11."""
    return int(_digits(value)) % 11 == 0


def se_personnummer_ok(value: str) -> bool:
    return luhn_ok(_digits(value)[-10:])


# --------------------------------------------------------------------------
# Value patterns


@dataclass(frozen=True)
class Pattern:
    """One value format of a PII type.

    ``regex`` runs in Spark (Java syntax). When ``check`` is set, the regex
    must also work in Python's ``re``: the matching values are collected and
    only those passing ``check`` count.
    """

    pii_type: str
    name: str
    regex: str
    check: Callable[[str], bool] | None = None
    needs_hint: bool = False  # too weak alone: counts only if the name hints it


_NAME_WORD = r"\p{Lu}[\p{L}'’]*\p{Ll}(?:-\p{Lu}[\p{L}'’]*\p{Ll})?"
_NAME_PARTICLE = r"(?:van|von|de|der|den|da|di|del|della|dos|du|la|le|af|zu|ten|ter|y)"
_IPV4 = r"((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_H = "[0-9A-Fa-f]{1,4}"
_IPV6 = (
    f"({_H}:){{7}}{_H}|({_H}:){{1,7}}:|({_H}:){{1,6}}:{_H}|({_H}:){{1,5}}(:{_H}){{1,2}}"
    f"|({_H}:){{1,4}}(:{_H}){{1,3}}|({_H}:){{1,3}}(:{_H}){{1,4}}"
    f"|({_H}:){{1,2}}(:{_H}){{1,5}}|{_H}:(:{_H}){{1,6}}|:((:{_H}){{1,7}}|:)"
)
_STREET_BEFORE_NUMBER = (
    r"rue|avenue|boulevard|chemin|place|allée|impasse|quai|via|viale|vicolo|piazza|piazzale|"
    r"corso|largo|strada|borgo|contrada|canale|stretto|rotonda|calle|avenida|plaza|paseo|carrer|"
    r"rua|ulica|ul\.|aleja|al\.|plac|laan"
)
_STREET_AFTER_NUMBER = (
    r"rue|avenue|av\.|boulevard|bd|chemin|place|allée|impasse|quai|route|road|street|st\.|"
    r"lane|drive|via|calle"
)
_STREET_SUFFIX = (
    r"straße|strasse|str\.|weg|gasse|platz|allee|damm|ring|ufer|laan|straat|gracht|plein|pad|"
    r"kade|singel|dreef|gata|gatan|vägen|väg|vej|gade|alle"
)

PATTERNS: tuple[Pattern, ...] = (
    Pattern("email", "email", r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"),
    # A digit count of a real number (E.164: at most 15) keeps dates and
    # short codes out.
    Pattern(
        "phone",
        "international",
        r"^(\+|00)(?=(\D*\d){8,15}\D*$)[1-9]\d{0,2}[ .-]?(\(0\)[ .-]?)?\d{1,4}([ .-]?\d{1,4}){1,5}$",
    ),
    Pattern("phone", "national", r"^0(?=(\D*\d){9,11}\D*$)[1-9]\d{0,4}([ ./-]?\d{2,4}){1,5}$"),
    Pattern("ip_address", "ipv4", f"^{_IPV4}$"),
    Pattern("ip_address", "ipv6", f"^({_IPV6})$"),
    Pattern(
        "national_id",
        "fr_nir",
        r"^[12] ?\d{2} ?(0[1-9]|1[0-2]|[2-9]\d) ?(\d{2}|2[ABab]) ?\d{3} ?\d{3} ?\d{2}$",
        fr_nir_ok,
    ),
    Pattern("national_id", "de_steuer_id", r"^[1-9]\d( ?\d{3}){3}$", de_steuer_id_ok),
    Pattern("national_id", "pl_pesel", r"^\d{11}$", pl_pesel_ok),
    Pattern("national_id", "nl_bsn", r"^\d{4}\.?\d{2}\.?\d{3}$", nl_bsn_ok),
    Pattern("national_id", "es_dni", r"^([0-9]{8}|[XYZxyz][0-9]{7})-?[A-Za-z]$", es_dni_ok),
    Pattern(
        "national_id",
        "it_codice_fiscale",
        r"^[A-Za-z]{6}\d{2}[A-EHLMPR-Ta-ehlmpr-t]\d{2}[A-Za-z]\d{3}[A-Za-z]$",
        lambda _value: True,
    ),
    Pattern("national_id", "ch_ahv", r"^756\.?\d{4}\.?\d{4}\.?\d{2}$", ch_ahv_ok),
    Pattern(
        "national_id",
        "se_personnummer",
        r"^(19|20)?\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])[-+]?\d{4}$",
        se_personnummer_ok,
    ),
    Pattern("national_id", "cz_sk_rodne_cislo", r"^\d{2}[0-35-8]\d[0-3]\d/?\d{4}$", cz_sk_rodne_cislo_ok),
    Pattern("iban", "iban", r"^[A-Za-z]{2}\d{2}( ?[A-Za-z0-9]){11,30}$", iban_ok),
    Pattern("credit_card", "credit_card", r"^[2-6]\d{3}([ -]?\d){9,15}$", credit_card_ok),
    Pattern(
        "street_address",
        "number_first",
        rf"(?iu)^\d{{1,4}}\s*[a-z]?(\s*(bis|ter))?,?\s+({_STREET_AFTER_NUMBER})\s+\p{{L}}.*$",
    ),
    Pattern(
        "street_address",
        "street_word_first",
        rf"(?iu)^({_STREET_BEFORE_NUMBER})\s+\p{{L}}.*\s\d{{1,4}}\s*[a-z]?\b.*$",
    ),
    Pattern(
        "street_address",
        "street_suffix",
        rf"(?iu)^\p{{L}}[\p{{L}}. -]*({_STREET_SUFFIX})\s+\d{{1,4}}\s*[a-z]?\b.*$",
    ),
    Pattern("postcode", "nl", r"^\d{4} ?[A-Za-z]{2}$"),
    Pattern("postcode", "uk", r"^[A-Za-z]{1,2}\d[A-Za-z\d]? \d[A-Za-z]{2}$"),
    Pattern("postcode", "pl", r"^\d{2}-\d{3}$"),
    Pattern("postcode", "se_cz", r"^\d{3} \d{2}$"),
    Pattern("postcode", "country_prefixed", r"^(D|F|I|A|B|L|E|P|S|CH|NL|DK|FI|PL)-\d{4,5}$"),
    Pattern("postcode", "digits", r"^\d{4,5}$", needs_hint=True),
    Pattern(
        "person_name",
        "capitalised_words",
        rf"^{_NAME_WORD}(,?\s+({_NAME_PARTICLE}\s+)*{_NAME_WORD}){{1,3}}$",
        needs_hint=True,
    ),
)

# Values that are already protected: keyed hex digests, masks, tokens and
# network ranges. A column mostly made of them is not reported.
PROTECTED_REGEX = r"^([0-9a-fA-F]{32,128}|tok_[0-9A-Za-z-]+|[0-9A-Fa-f.:]+/\d{1,3})$|\*{2,}"

# Most specific first: when several types match one column, the first wins.
VALUE_PRIORITY = (
    "credit_card",
    "iban",
    "email",
    "ip_address",
    "national_id",
    "phone",
    "street_address",
    "postcode",
    "date_of_birth",
    "person_name",
)

# --------------------------------------------------------------------------
# Name hints, matched on the lower-cased column name; order matters
# ("email_address" is an email, "mac_address" a device id, not a street).

NAME_HINTS: tuple[tuple[str, str], ...] = (
    ("email", r"e_?mail"),
    ("ip_address", r"(^|_)ip(v[46])?(_|$)|ip_?addr"),
    ("phone", r"phone|mobile|msisdn|(^|_)tel(ephone)?(_|$)|telefon|handy|gsm"),
    ("iban", r"iban|bank_?account"),
    ("credit_card", r"credit_?card|card_?(number|num|no)|(^|_)(pan|ccn|cc_?number)(_|$)"),
    (
        "national_id",
        r"(^|_)(ssn|nir|national_?id|nin|tax_?id|codice_?fiscale|cf|dni|nie|pesel|bsn|ahv|avs"
        r"|personnummer|insee|id_?card|passport(_?(no|number))?)(_|$)|steuer",
    ),
    ("date_of_birth", r"dob|birth|geburt|naissance|nascita|nacimiento"),
    ("postcode", r"post_?code|postal|zip|(^|_)(plz|cap|cp)(_|$)"),
    (
        "identifier",
        r"(^|_)(user|customer|client|patient|member|person|subscriber|account|device|watch"
        r"|wearer|household)_?(id|uuid|key|number|no)$|^(imei|imsi|mac_?address|serial_?number|uid|userid)$",
    ),
    (
        "street_address",
        r"street|(^|_)(home_|postal_|billing_|shipping_|mailing_)?addr(ess)?(_?line_?\d)?(_|$)"
        r"|adresse|strasse|indirizzo|direccion",
    ),
    (
        "person_name",
        r"^(full|first|last|given|family|middle|sur|fore|maiden|person|customer|patient|user"
        r"|wearer|contact|display)?_?name$"
        r"|^(nom|prenom|prénom|vorname|nachname|nome|cognome|nombre|apellidos?|imie|nazwisko)$",
    ),
    ("city", r"city|town|municipality|ville|stadt|citta|ciudad|miasto"),
    ("country", r"country|nationality|citizenship"),
    ("region", r"region|province|county|bundesland"),
    ("gender", r"gender|(^|_)sex(e)?(_|$)|geschlecht"),
    ("age", r"(^|_)age(_|$)|age_?(band|group)"),
    ("marital_status", r"marital|civil_?status"),
    ("ethnicity", r"ethnic|(^|_)race(_|$)"),
    ("religion", r"religio"),
    ("occupation", r"occupation|profession|job_?title"),
)

LEVELS: dict[str, str] = {
    **dict.fromkeys(
        ("email", "phone", "national_id", "iban", "credit_card", "person_name", "street_address"),
        HIGH,
    ),
    **dict.fromkeys(("ip_address", "date_of_birth", "postcode", "identifier"), MEDIUM),
}  # every other (name-hinted) type is LOW

PROPOSED_TREATMENTS: dict[str, str] = {
    "identifier": "pseudonymize",
    "email": "mask_email",
    "phone": "mask_phone",
    "ip_address": "mask_ip",
    "person_name": "mask_name",
    "national_id": "tokenize",
    "iban": "tokenize",
    "credit_card": "tokenize",
    "date_of_birth": "generalize_age_band",
    "postcode": "generalize_postcode",
    "street_address": "drop",
}  # LOW: keep


def level_of(pii_type: str) -> str:
    return LEVELS.get(pii_type, LOW)


def name_hints(column: str) -> list[str]:
    """Every type the column name hints, most specific first."""
    lowered = column.lower()
    return [pii_type for pii_type, regex in NAME_HINTS if re.search(regex, lowered)]


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
    from pyspark.sql.types import ArrayType, BinaryType, DateType, MapType, StructType, TimestampType

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
