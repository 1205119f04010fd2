"""What PII looks like, for the scanner (pii_detect.py): the levels, the check
digits run in Python, the value patterns run in Spark, and the name hints.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass



HIGH, MEDIUM, LOW = "HIGH", "MEDIUM", "LOW"


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


