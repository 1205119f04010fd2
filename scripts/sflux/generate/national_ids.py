"""National ids per country, and the numpy helpers that fill fixed patterns.

They follow each country's real layout, with the real check digit or
letter (NIR key, Steuer-ID ISO 7064, AHV EAN-13, DNI letter, BSN 11-proof,
PESEL, personnummer Luhn, ...). They are synthetic: right shape, random
serials; none is meant to belong to anyone.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np
import pyarrow as pa



ASCII_FOLD = str.maketrans({"ł": "l", "Ł": "L", "ß": "ss", "ø": "o", "Ø": "O", "æ": "ae",
                            "Æ": "AE", "đ": "d", "Đ": "D", "œ": "oe", "Œ": "OE", "ı": "i"})


def ascii_fold(text: str) -> str:
    """Zürich -> Zurich, Łódź -> Lodz: what an e-mail provider accepts."""
    decomposed = unicodedata.normalize("NFKD", text.translate(ASCII_FOLD))
    return decomposed.encode("ascii", "ignore").decode("ascii")


# --- fixed-pattern strings ---------------------------------------------------


def ascii_rows(matrix: np.ndarray) -> pa.Array:
    """Rows of an (n, width) uint8 matrix of ASCII codes -> a string array."""
    n, width = matrix.shape
    flat = np.ascontiguousarray(matrix, dtype=np.uint8).view(f"S{width}").ravel() if n else \
        np.zeros(0, dtype=f"S{max(width, 1)}")
    return pa.array(flat, pa.binary()).cast(pa.string())


def fill_pattern(pattern: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """n copies of `pattern` with each '#' a random digit and each '@' a random
    capital letter, as an (n, len) ASCII matrix."""
    codes = np.frombuffer(pattern.encode("ascii"), dtype=np.uint8)
    out = np.repeat(codes[None, :], n, axis=0)
    for position, char in enumerate(pattern):
        if char == "#":
            out[:, position] = 48 + rng.integers(0, 10, n)
        elif char == "@":
            out[:, position] = 65 + rng.integers(0, 26, n)
    return out


def digit_matrix(values: np.ndarray, width: int) -> np.ndarray:
    """Decimal digits of non-negative integers, most significant first."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((values.astype(np.int64)[:, None] // powers) % 10).astype(np.int64)


def to_ascii(digits: np.ndarray) -> np.ndarray:
    return (digits + 48).astype(np.uint8)


def joined(*parts: np.ndarray | str, n: int) -> np.ndarray:
    """Concatenate ASCII matrices and literal separators column-wise."""
    blocks = []
    for part in parts:
        if isinstance(part, str):
            blocks.append(np.repeat(np.frombuffer(part.encode(), np.uint8)[None, :], n, axis=0))
        else:
            blocks.append(part.astype(np.uint8))
    return np.concatenate(blocks, axis=1)


# --- national ids --------------------------------------------------------------


@dataclass(frozen=True)
class Births:
    """What a national id encodes, for the users of one country."""

    year: np.ndarray
    month: np.ndarray
    day: np.ndarray
    female: np.ndarray  # sex as registered (the sex the name was drawn with)
    first: list[str]
    last: list[str]

    def __len__(self) -> int:
        return len(self.year)

    @property
    def yymmdd(self) -> np.ndarray:
        return (self.year % 100) * 10_000 + self.month * 100 + self.day

    @property
    def ddmmyy(self) -> np.ndarray:
        return self.day * 10_000 + self.month * 100 + self.year % 100


def _resample(n: int, valid, draw, rng: np.random.Generator) -> np.ndarray:
    """n rows from `draw`, redrawn until `valid(values)` holds for all."""
    values = draw(n, rng)
    bad = ~valid(values)
    while bad.any():
        values[bad] = draw(int(bad.sum()), rng)
        bad = ~valid(values)
    return values


def nir_fr(b: Births, rng: np.random.Generator) -> np.ndarray:
    """NIR (sécurité sociale): sex, yy, mm, department, commune, order, key
    = 97 - (13 digits mod 97); 15 digits."""
    n = len(b)
    dept = rng.integers(1, 96, n)
    dept = np.where(dept == 20, 21, dept)  # Corsica uses 2A/2B
    number = (np.where(b.female, 2, 1) * 10**12 + (b.year % 100) * 10**10 + b.month * 10**8
              + dept * 10**6 + rng.integers(1, 991, n) * 10**3 + rng.integers(1, 1000, n))
    key = 97 - number % 97
    return to_ascii(np.concatenate([digit_matrix(number, 13), digit_matrix(key, 2)], axis=1))


def steuer_id_de(b: Births, rng: np.random.Generator) -> np.ndarray:
    """Steuer-ID: 10 digits where one digit appears twice and one not at all,
    no leading 0, then an ISO 7064 MOD 11,10 check digit."""
    n = len(b)
    digits = rng.permuted(np.tile(np.arange(10), (n, 1)), axis=1)
    src = rng.integers(0, 10, n)
    dst = (src + rng.integers(1, 10, n)) % 10
    digits[np.arange(n), dst] = digits[np.arange(n), src]
    lead = np.argmax(digits != 0, axis=1)  # rotate so the first digit is not 0
    digits = digits[np.arange(n)[:, None], (np.arange(10)[None, :] + lead[:, None]) % 10]
    product = np.full(n, 10)
    for k in range(10):
        total = (digits[:, k] + product) % 10
        total = np.where(total == 0, 10, total)
        product = (total * 2) % 11
    check = (11 - product) % 10
    return to_ascii(np.concatenate([digits, check[:, None]], axis=1))


def ahv_ch(b: Births, rng: np.random.Generator) -> np.ndarray:
    """AHV/AVS number 756.xxxx.xxxx.xc, c the EAN-13 check digit."""
    n = len(b)
    body = np.concatenate([np.tile([7, 5, 6], (n, 1)), rng.integers(0, 10, (n, 9))], axis=1)
    weights = np.tile([1, 3], 6)
    check = (10 - (body * weights).sum(axis=1) % 10) % 10
    d = to_ascii(np.concatenate([body, check[:, None]], axis=1))
    return joined(d[:, :3], ".", d[:, 3:7], ".", d[:, 7:11], ".", d[:, 11:], n=n)


def svnr_at(b: Births, rng: np.random.Generator) -> np.ndarray:
    """Sozialversicherungsnummer: serial(3) check(1) ddmmyy; weighted mod 11,
    serials whose check would be 10 are redrawn."""
    n = len(b)
    date_digits = digit_matrix(b.ddmmyy, 6)
    date_sum = (date_digits * np.array([5, 8, 4, 2, 1, 6])).sum(axis=1)

    def check_of(serial: np.ndarray) -> np.ndarray:
        return ((digit_matrix(serial, 3) * np.array([3, 7, 9])).sum(axis=1) + date_sum) % 11

    serial = rng.integers(100, 1000, n)
    bad = check_of(serial) == 10
    while bad.any():
        serial[bad] = rng.integers(100, 1000, int(bad.sum()))
        bad = check_of(serial) == 10
    d = np.concatenate([digit_matrix(serial, 3), check_of(serial)[:, None], date_digits], axis=1)
    d = to_ascii(d)
    return joined(d[:, :4], " ", d[:, 4:], n=n)


CF_MONTHS = "ABCDEHLMPRST"
CF_ODD = dict(zip("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                  [1, 0, 5, 7, 9, 13, 15, 17, 19, 21] +
                  [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16,
                   10, 22, 25, 24, 23]))
CF_EVEN = {**{str(i): i for i in range(10)}, **{chr(65 + i): i for i in range(26)}}
CF_PLACES = ("H501", "F205", "F839", "L219", "A345", "H223", "G273", "A662", "D612", "L736")


def _cf_letters(text: str, is_first: bool) -> str:
    letters = [c for c in ascii_fold(text).upper() if c.isalpha()]
    consonants = [c for c in letters if c not in "AEIOU"]
    vowels = [c for c in letters if c in "AEIOU"]
    if is_first and len(consonants) >= 4:
        consonants = [consonants[0], consonants[2], consonants[3]]
    return "".join(consonants + vowels + ["X", "X", "X"])[:3]


def codice_fiscale_it(b: Births, rng: np.random.Generator) -> list[str]:
    """Codice fiscale from the person's name and birth date (day + 40 for
    women), a birthplace code and the check letter."""
    places = rng.integers(0, len(CF_PLACES), len(b))
    out = []
    for i in range(len(b)):
        day = int(b.day[i]) + (40 if b.female[i] else 0)
        body = (f"{_cf_letters(b.last[i], False)}{_cf_letters(b.first[i], True)}"
                f"{int(b.year[i]) % 100:02d}{CF_MONTHS[int(b.month[i]) - 1]}{day:02d}"
                f"{CF_PLACES[places[i]]}")
        total = sum(CF_ODD[c] if k % 2 == 0 else CF_EVEN[c] for k, c in enumerate(body))
        out.append(body + chr(65 + total % 26))
    return out


def dni_es(b: Births, rng: np.random.Generator) -> np.ndarray:
    """DNI: 8 digits and the mod-23 letter."""
    number = rng.integers(0, 100_000_000, len(b))
    letters = np.frombuffer(b"TRWAGMYFPDXBNJZSQVHLCKE", np.uint8)[number % 23]
    return np.concatenate([to_ascii(digit_matrix(number, 8)), letters[:, None]], axis=1)


def nif_pt(b: Births, rng: np.random.Generator) -> np.ndarray:
    """NIF of a person: starts with 1 or 2, mod-11 check digit."""
    n = len(b)
    body = np.concatenate([rng.integers(1, 3, (n, 1)), rng.integers(0, 10, (n, 7))], axis=1)
    r = (body * np.arange(9, 1, -1)).sum(axis=1) % 11
    check = np.where(r < 2, 0, 11 - r)
    return to_ascii(np.concatenate([body, check[:, None]], axis=1))


def bsn_nl(b: Births, rng: np.random.Generator) -> np.ndarray:
    """BSN: 9 digits passing the 11-proof (9..2 weights, last digit -1)."""
    weights = np.arange(9, 1, -1)

    def draw(k: int, g: np.random.Generator) -> np.ndarray:
        return np.concatenate([g.integers(1, 10, (k, 1)), g.integers(0, 10, (k, 7))], axis=1)

    body = _resample(len(b), lambda d: (d * weights).sum(axis=1) % 11 != 10, draw, rng)
    check = (body * np.arange(9, 1, -1)).sum(axis=1) % 11
    return to_ascii(np.concatenate([body, check[:, None]], axis=1))


def rrn_be(b: Births, rng: np.random.Generator) -> np.ndarray:
    """Rijksregisternummer yy.mm.dd-sss.cc: serial odd for men, even for
    women; check = 97 - (number mod 97), with a leading 2 after 1999."""
    n = len(b)
    serial = rng.integers(0, 499, n) * 2 + np.where(b.female, 2, 1)
    number = b.yymmdd.astype(np.int64) * 1000 + serial
    check = 97 - (number + np.where(b.year >= 2000, 2_000_000_000, 0)) % 97
    d = to_ascii(np.concatenate([digit_matrix(number, 9), digit_matrix(check, 2)], axis=1))
    return joined(d[:, 0:2], ".", d[:, 2:4], ".", d[:, 4:6], "-", d[:, 6:9], ".", d[:, 9:], n=n)


def pesel_pl(b: Births, rng: np.random.Generator) -> np.ndarray:
    """PESEL: yymmdd (month + 20 after 1999), serial, sex digit, check."""
    n = len(b)
    month = b.month + np.where(b.year >= 2000, 20, 0)
    head = (b.year % 100) * 10_000 + month * 100 + b.day
    sex = rng.integers(0, 5, n) * 2 + np.where(b.female, 0, 1)
    body = np.concatenate([digit_matrix(head, 6), rng.integers(0, 10, (n, 3)), sex[:, None]], axis=1)
    check = (10 - (body * np.array([1, 3, 7, 9, 1, 3, 7, 9, 1, 3])).sum(axis=1) % 10) % 10
    return to_ascii(np.concatenate([body, check[:, None]], axis=1))


def rodne_cislo_cz(b: Births, rng: np.random.Generator) -> np.ndarray:
    """Rodné číslo yymmdd/ssss: month + 50 for women, the 10 digits divisible
    by 11."""
    n = len(b)
    month = b.month + np.where(b.female, 50, 0)
    head = ((b.year % 100) * 10_000 + month * 100 + b.day).astype(np.int64)
    serial = rng.integers(0, 1000, n)
    check = (head * 1000 + serial) % 11
    bad = check == 10
    while bad.any():
        serial[bad] = rng.integers(0, 1000, int(bad.sum()))
        check = (head * 1000 + serial) % 11
        bad = check == 10
    d = to_ascii(np.concatenate([digit_matrix(head, 6), digit_matrix(serial, 3), check[:, None]],
                                axis=1))
    return joined(d[:, :6], "/", d[:, 6:], n=n)


def luhn_check(digits: np.ndarray) -> np.ndarray:
    """Luhn check digit for digit rows (weights 2,1,2,... from the left)."""
    weights = np.where(np.arange(digits.shape[1]) % 2 == 0, 2, 1)
    products = digits * weights
    return (10 - (products // 10 + products % 10).sum(axis=1) % 10) % 10


def personnummer_se(b: Births, rng: np.random.Generator) -> np.ndarray:
    """Personnummer yymmdd-nnnc: third serial digit odd for men, Luhn check."""
    n = len(b)
    sex = rng.integers(0, 5, n) * 2 + np.where(b.female, 0, 1)
    body = np.concatenate([digit_matrix(b.yymmdd, 6), rng.integers(0, 10, (n, 2)), sex[:, None]],
                          axis=1)
    d = to_ascii(np.concatenate([body, luhn_check(body)[:, None]], axis=1))
    return joined(d[:, :6], "-", d[:, 6:], n=n)


def cpr_dk(b: Births, rng: np.random.Generator) -> np.ndarray:
    """CPR ddmmyy-ssss, last digit even for women (no mod-11 since 2007)."""
    n = len(b)
    serial = rng.integers(0, 500, n) * 2 + np.where(b.female, 0, 1)
    d = to_ascii(np.concatenate([digit_matrix(b.ddmmyy, 6), rng.integers(0, 10, (n, 1)),
                                 digit_matrix(serial, 3)], axis=1))
    return joined(d[:, :6], "-", d[:, 6:], n=n)


def hetu_fi(b: Births, rng: np.random.Generator) -> np.ndarray:
    """Henkilötunnus ddmmyyCzzzq: C '-' (1900s) or 'A' (2000s), zzz odd for
    men, q = ddmmyyzzz mod 31 in the official alphabet."""
    n = len(b)
    zzz = rng.integers(1, 449, n) * 2 + np.where(b.female, 0, 1)
    number = b.ddmmyy.astype(np.int64) * 1000 + zzz
    alphabet = np.frombuffer(b"0123456789ABCDEFHJKLMNPRSTUVWXY", np.uint8)
    century = np.where(b.year >= 2000, ord("A"), ord("-")).astype(np.uint8)[:, None]
    d = to_ascii(digit_matrix(number, 9))
    return np.concatenate([d[:, :6], century, d[:, 6:], alphabet[number % 31][:, None]], axis=1)


def ppsn_ie(b: Births, rng: np.random.Generator) -> np.ndarray:
    """PPS number: 7 digits and the mod-23 check letter (W for 0)."""
    n = len(b)
    body = rng.integers(0, 10, (n, 7))
    r = (body * np.arange(8, 1, -1)).sum(axis=1) % 23
    letter = np.where(r == 0, ord("W"), 64 + r).astype(np.uint8)
    return np.concatenate([to_ascii(body), letter[:, None]], axis=1)


NATIONAL_IDS = {
    "FR": nir_fr, "DE": steuer_id_de, "CH": ahv_ch, "AT": svnr_at, "IT": codice_fiscale_it,
    "ES": dni_es, "PT": nif_pt, "NL": bsn_nl, "BE": rrn_be, "PL": pesel_pl, "CZ": rodne_cislo_cz,
    "SE": personnummer_se, "DK": cpr_dk, "FI": hetu_fi, "IE": ppsn_ie,
}


