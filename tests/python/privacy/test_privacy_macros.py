"""Unit tests for the privacy macros (macros/privacy, k_anonymity; the
differential privacy release is tested in tests/python/dp/): each asserts the behaviour documented in the macro's
header, exactly, on awkward multi-country inputs.

dbt parses the project once per module; each test then compiles one inline
query against that manifest (about half a second) and runs the compiled SQL
in the shared Spark session, with all of its cases in one VALUES table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from dbt_helpers import REPO_ROOT, run_dbt

pytestmark = pytest.mark.unit

Render = Callable[..., str]


@pytest.fixture(scope="module")
def render(spark) -> Render:
    """Compile inline Jinja SQL with the project's macros and return the SQL.

    Passing the parsed manifest to dbtRunner skips the re-parse that every
    `dbt show`/`dbt compile` would otherwise do (seconds each), and
    --no-populate-cache skips listing the warehouse's tables, which would
    start the metastore that these queries never touch (~10 s)."""
    from dbt.cli.main import dbtRunner

    manifest = run_dbt(["parse"]).result

    def _render(sql: str, dbt_vars: dict[str, Any] | None = None) -> str:
        args = [
            "compile", "--inline", sql, "--quiet", "--no-populate-cache",
            "--project-dir", str(REPO_ROOT),
        ]
        if dbt_vars:
            args += ["--vars", json.dumps(dbt_vars)]
        result = dbtRunner(manifest=manifest).invoke(args)
        if result.exception is not None:
            raise result.exception
        assert result.success, f"dbt compile failed for:\n{sql}"
        return result.result.results[0].node.compiled_code

    return _render


def sql_literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dt.date):
        return f"date'{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return repr(value)


def apply_macros(
    spark, render: Render, inputs: Sequence[Any], expressions: dict[str, str],
    input_type: str = "string", dbt_vars: dict[str, Any] | None = None,
) -> dict[str, dict[Any, Any]]:
    """Evaluate Jinja expressions over the column `value` holding `inputs`, in
    one dbt compile and one Spark query: {output name: {input: output}}."""
    rows = ", ".join(f"({i}, cast({sql_literal(v)} as {input_type}))" for i, v in enumerate(inputs))
    outputs = ", ".join(f"{expression} as {name}" for name, expression in expressions.items())
    sql = f"select case_id, {outputs} from values {rows} as cases(case_id, value)"
    result = {row["case_id"]: row for row in spark.sql(render(sql, dbt_vars)).collect()}
    return {name: {value: result[i][name] for i, value in enumerate(inputs)} for name in expressions}


# --- masking ------------------------------------------------------------------

def test_mask_email_keeps_two_local_chars_and_the_lowercased_tld(spark, render):
    """Only the first two characters of the local part and the top-level
    domain survive, behind fixed-width stars; anything not shaped like an
    email becomes NULL instead of passing through unmasked."""
    expected = {
        "jean.dupont@example.fr": "je***@***.fr",
        "a@example.com": "a***@***.com",
        "Jean.Dupont@Example.FR": "Je***@***.fr",
        "marie.curie@nhs.co.uk": "ma***@***.uk",
        "łukasz.wiśniewski@poczta.pl": "łu***@***.pl",
        "zoë@exemple.de": "zo***@***.de",
        "  jan.jansen@voorbeeld.nl  ": "ja***@***.nl",
        "not-an-email": None,
        "jean@localhost": None,
        "jean@example.": None,
        "jean@@example.fr": None,
        "jean dupont@example.fr": None,
        "@example.fr": None,
        "": None,
        None: None,
    }
    actual = apply_macros(spark, render, list(expected), {"masked": "{{ mask_email('value') }}"})
    assert actual["masked"] == expected


def test_mask_phone_keeps_only_the_last_four_digits(spark, render):
    """Country code, formatting and length are dropped; fewer than six digits
    is not a phone number and becomes NULL."""
    expected = {
        "+33 6 12 34 56 78": "***5678",
        "(030) 1234-5678": "***5678",
        "+44 20 7946 0958": "***0958",
        "0031-20-555.0199": "***0199",
        "123456": "***3456",
        "12345": None,
        "+1 (2) 3-4-5": None,
        "n/a": None,
        "": None,
        None: None,
    }
    actual = apply_macros(spark, render, list(expected), {"masked": "{{ mask_phone('value') }}"})
    assert actual["masked"] == expected


def test_mask_ip_truncates_to_the_network(spark, render):
    """IPv4 keeps its /24 and IPv6 its /48. Compressed IPv6 is expanded
    before truncation so '::' never hides where the /48 ends, leading zeros
    are dropped, and anything that is not an address becomes NULL."""
    expected = {
        "192.168.17.42": "192.168.17.0/24",
        " 10.0.0.1 ": "10.0.0.0/24",
        "2001:0db8:85a3:08d3:1319:8a2e:0370:7348": "2001:db8:85a3::/48",
        "2001:db8:85a3:8d3:1319:8a2e:370:7348": "2001:db8:85a3::/48",
        "2001:DB8:85A3:08D3:1319:8A2E:0370:7348": "2001:db8:85a3::/48",
        "2001:db8::1": "2001:db8:0::/48",
        "::1": "0:0:0::/48",
        "::": "0:0:0::/48",
        "2001:db8:85a3::8a2e:370:7334": "2001:db8:85a3::/48",
        "fe80::": "fe80:0:0::/48",
        "FE80::1FF:FE23:4567:890A": "fe80:0:0::/48",
        "2001:0000:0000:0001::": "2001:0:0::/48",
        "not an ip": None,
        "localhost": None,
        "1.2.3": None,
        "1.2.3.4.5": None,
        "192.168.1.1/24": None,
        "2001:db8::g1": None,
        "": None,
        None: None,
    }
    actual = apply_macros(spark, render, list(expected), {"masked": "{{ mask_ip('value') }}"})
    assert actual["masked"] == expected


def test_mask_ip_rejects_malformed_addresses(spark, render):
    """'Anything else becomes NULL': an out-of-range octet, too few or too
    many IPv6 groups, a group of five hex digits or two '::' is not an
    address."""
    malformed = ["999.1.2.3", "256.0.0.1", "abc:def", ":", "12345::1", "1::2::3", "1:2:3:4:5:6:7:8:9"]
    actual = apply_macros(spark, render, malformed, {"masked": "{{ mask_ip('value') }}"})
    assert actual["masked"] == {value: None for value in malformed}


def test_mask_name_keeps_one_initial_per_word(spark, render):
    """Every word becomes its initial plus three stars, whatever its length,
    punctuation or script; commas and runs of whitespace only separate words."""
    expected = {
        "Jean Dupont": "J*** D***",
        "Dupont, Jean": "D*** J***",
        "Jean  Dupont": "J*** D***",
        " Jean\tDupont ": "J*** D***",
        "Łukasz Wiśniewski": "Ł*** W***",
        "Zoë O'Brien": "Z*** O***",
        "Jean-Pierre de la Fontaine": "J*** d*** l*** F***",
        "Ólafur Ragnar Grímsson": "Ó*** R*** G***",
        "Müller,Hans": "M*** H***",
        "李小龙": "李***",
        "Al": "A***",
        " , ": None,
        "": None,
        None: None,
    }
    actual = apply_macros(spark, render, list(expected), {"masked": "{{ mask_name('value') }}"})
    assert actual["masked"] == expected


def test_mask_name_leaks_no_punctuation(spark, render):
    """'The mask leaks neither the length of the name nor its punctuation':
    each word's mask is a letter and three stars, also for words such as the
    Dutch "'t" or a nickname in parentheses."""
    names = ["Gerard 't Hooft", "(Jean) Dupont", "Jean \"Johnny\" Dupont"]
    actual = apply_macros(spark, render, names, {"masked": "{{ mask_name('value') }}"})
    assert all(
        len(word) == 4 and word[0].isalpha() and word[1:] == "***"
        for masked in actual["masked"].values() for word in masked.split(" ")
    ), actual["masked"]


# --- generalization -----------------------------------------------------------

def test_generalize_age_band_on_band_edges(spark, render):
    """Age counts whole years on `privacy_as_of_date`: a member turning 30 on
    that date is '30-39', one born a day later still '20-29'. From 90 up one
    open band '90+'; NULL and future dates of birth give NULL."""
    date = dt.date
    expected = {
        date(1996, 6, 30): "30-39",  # 30th birthday on the as-of date
        date(1996, 7, 1): "20-29",  # 30th birthday tomorrow
        date(1996, 5, 31): "30-39",
        date(1986, 7, 1): "30-39",  # 40th birthday tomorrow
        date(1936, 6, 30): "90+",  # 90th birthday today
        date(1936, 7, 1): "80-89",
        date(1900, 1, 1): "90+",
        date(2000, 2, 29): "20-29",
        date(2026, 6, 30): "0-9",  # born on the as-of date
        date(2016, 7, 1): "0-9",
        date(2016, 6, 30): "10-19",
        date(2026, 7, 1): None,  # born after the as-of date
        date(2030, 1, 1): None,
        None: None,
    }
    actual = apply_macros(
        spark, render, list(expected),
        {
            "band": "{{ generalize_age_band('value') }}",
            "band_5_top_85": "{{ generalize_age_band('value', band_years=5, top_age=85) }}",
        },
        input_type="date", dbt_vars={"privacy_as_of_date": "2026-06-30"},
    )
    assert actual["band"] == expected
    assert actual["band_5_top_85"][date(1996, 6, 30)] == "30-34"
    assert actual["band_5_top_85"][date(1996, 7, 1)] == "25-29"
    assert actual["band_5_top_85"][date(1986, 7, 1)] == "35-39"
    assert actual["band_5_top_85"][date(1936, 7, 1)] == "85+"
    assert actual["band_5_top_85"][date(2026, 6, 30)] == "0-4"


def test_generalize_postcode_keeps_a_prefix_of_letters_and_digits(spark, render):
    """Spaces and punctuation are dropped and letters upper-cased before
    truncating to var postcode_keep_chars (2) or keep_chars; nothing left
    gives NULL."""
    expected = {
        #  input        default  keep_chars=3
        "75011": ("75", "750"),
        "1012 AB": ("10", "101"),
        "SW1A 1AA": ("SW", "SW1"),
        "sw1a-1aa": ("SW", "SW1"),
        "00-950": ("00", "009"),
        "D02 X285": ("D0", "D02"),
        "K1A 0B1": ("K1", "K1A"),
        "7": ("7", "7"),
        " - ": (None, None),
        "": (None, None),
        None: (None, None),
    }
    actual = apply_macros(
        spark, render, list(expected),
        {
            "prefix": "{{ generalize_postcode('value') }}",
            "prefix_3": "{{ generalize_postcode('value', keep_chars=3) }}",
        },
    )
    assert actual["prefix"] == {k: v[0] for k, v in expected.items()}
    assert actual["prefix_3"] == {k: v[1] for k, v in expected.items()}


# --- pseudonymization ---------------------------------------------------------

def test_pseudonymize_is_hmac_sha256_of_the_key(spark, render, pseudonym_key: str):
    """pseudonymize() is lowercase hex HMAC-SHA256(key, UTF-8 value), the key
    read from the Spark driver's environment: the same value gets the same
    pseudonym here, in Python and in every model, so tables still join."""
    values = [
        "user_000001", "user_099999", "Łukasz Wiśniewski", "zoë@exemple.de", "日本語", "O'Brien", "",
    ]
    actual = apply_macros(spark, render, [*values, None], {"pseudonym": "{{ pseudonymize('value') }}"})
    key = pseudonym_key.encode()
    assert actual["pseudonym"] == {
        **{v: hmac.new(key, v.encode("utf-8"), hashlib.sha256).hexdigest() for v in values},
        None: None,
    }
    compiled = render("select {{ pseudonymize('value') }}")
    assert pseudonym_key not in compiled


def test_unkeyed_hash_of_ids_is_reversed_by_enumeration(spark, render):
    """Why ids are never hashed unkeyed.

    Ids like 'user_000001' come from a small, guessable space. An attacker who
    sees only unkeyed SHA-256 hashes of 5 000 member ids hashes every candidate
    id 'user_000000'..'user_099999' (100 000 hashes, well under a second in
    Spark) and joins: every published hash is reversed to its member's id.
    The same enumeration against pseudonymize() (HMAC with a secret key)
    matches nothing, because without the key the candidates' pseudonyms cannot
    be computed. This is what the warning in macros/privacy/unkeyed_hash.sql
    refers to.
    """
    sql = """
        with members as (
            select format_string('user_%06d', id) as user_id
            from range(1, 5001)
        ),
        published as (
            select
                user_id,
                'unkeyed_hash' as method,
                {{ unkeyed_hash('user_id') }} as published_value
            from members
            union all
            select
                user_id,
                'pseudonymize' as method,
                {{ pseudonymize('user_id') }} as published_value
            from members
        ),
        attacker_table as (
            select
                format_string('user_%06d', id) as candidate_id,
                sha2(format_string('user_%06d', id), 256) as candidate_hash
            from range(0, 100000)
        )
        select
            published.method,
            count(*) as published,
            count_if(attacker_table.candidate_id = published.user_id) as reversed
        from published
        left join attacker_table
            on published.published_value = attacker_table.candidate_hash
        group by published.method
    """
    reversed_share = {
        row["method"]: row["reversed"] / row["published"] for row in spark.sql(render(sql)).collect()
    }
    assert reversed_share == {"unkeyed_hash": 1.0, "pseudonymize": 0.0}


# --- small cells and k-anonymity ----------------------------------------------

def test_suppress_small_cell_hides_cells_below_k(spark, render):
    """A measure is published only when its cell holds at least k people
    (var min_cell_users = 5 by default): below k it is NULL, at k it shows."""
    sizes = [0, 1, 2, 3, 4, 5, 6, 1000, None]
    actual = apply_macros(
        spark, render, sizes,
        {
            "default_k": "{{ suppress_small_cell('100.5', 'value') }}",
            "k_3": "{{ suppress_small_cell('100.5', 'value', k=3) }}",
        },
        input_type="int",
    )
    assert actual["default_k"] == {s: (100.5 if s is not None and s >= 5 else None) for s in sizes}
    assert actual["k_3"] == {s: (100.5 if s is not None and s >= 3 else None) for s in sizes}


# 30 members as (row_id, age_band, postcode_prefix, sex), with the outcome
# enforce_k_anonymity must give each for k = 3 and the ladder below.
K_ANONYMITY_ROWS: list[tuple[str, str, str, str, str, int]] = [
    *[(f"a{i}", "30-39", "75", "F", "kept", 0) for i in range(6)],
    *[(f"b{i}", "40-49", "69", "M", "kept", 0) for i in range(5)],
    *[(f"c{i}", "20-29", "13", "F", "kept", 0) for i in range(4)],
    *[(f"d{i}", "50-59", "33", "M", "kept", 0) for i in range(3)],  # exactly k
    # Unique at level 0; at level 1 ('20-39', '7', 'M') three of them.
    ("e0", "20-29", "75", "M", "generalized", 1),
    ("e1", "30-39", "77", "M", "generalized", 1),
    ("e2", "30-39", "78", "M", "generalized", 1),
    # A level-0 group of two (< k) joins a third row at level 1 ('40-59', '3', 'F').
    ("f0", "40-49", "31", "F", "generalized", 1),
    ("f1", "40-49", "31", "F", "generalized", 1),
    ("f2", "50-59", "34", "F", "generalized", 1),
    # Unique at levels 0 and 1; level 2 ('*', '5', '*') groups them.
    ("g0", "60-69", "59", "F", "generalized", 2),
    ("g1", "70-79", "51", "M", "generalized", 2),
    ("g2", "20-29", "50", "F", "generalized", 2),
    # Two rows still a group of two at the last level ('*', '2', '*').
    ("h0", "80-89", "21", "M", "suppressed", 3),
    ("h1", "90+", "22", "F", "suppressed", 3),
    # Unique at every level: the only '6' area outside the kept group b.
    ("u0", "20-29", "64", "F", "suppressed", 3),
]

K_ANONYMITY_SQL = """
{%- set decades = "case when age_band in ('20-29', '30-39') then '20-39'
    when age_band in ('40-49', '50-59') then '40-59' else '60+' end" -%}
{%- set ladder = [
    {'age_band': 'age_band', 'postcode_prefix': 'postcode_prefix', 'sex': 'sex'},
    {'age_band': decades, 'postcode_prefix': 'left(postcode_prefix, 1)', 'sex': 'sex'},
    {'age_band': "'*'", 'postcode_prefix': 'left(postcode_prefix, 1)', 'sex': "'*'"},
] -%}
with src as (
    select * from values __ROWS__ as members(row_id, age_band, postcode_prefix, sex)
),
{{ enforce_k_anonymity('src', 'row_id', ladder, 3) }}
select * from k_anonymity_enforced
"""


def test_enforce_k_anonymity_generalizes_then_suppresses(spark, render):
    """Every input row comes out exactly once with an outcome; rows in groups
    of at least k keep level 0, others climb the ladder, and rows still in a
    group below k at the last level are suppressed with NULL
    quasi-identifiers. What is published is k-anonymous."""
    k = 3
    rows = ", ".join(
        "(" + ", ".join(sql_literal(v) for v in row[:4]) + ")" for row in K_ANONYMITY_ROWS
    )
    result = spark.sql(render(K_ANONYMITY_SQL.replace("__ROWS__", rows))).collect()

    assert sorted(r["row_id"] for r in result) == sorted(row[0] for row in K_ANONYMITY_ROWS)
    assert {r["row_id"]: (r["k_anonymity_outcome"], r["k_anonymity_level"]) for r in result} == {
        row[0]: (row[4], row[5]) for row in K_ANONYMITY_ROWS
    }
    published_tuple = {r["row_id"]: (r["age_band"], r["postcode_prefix"], r["sex"]) for r in result}
    published = Counter(
        published_tuple[r["row_id"]] for r in result if r["k_anonymity_outcome"] != "suppressed"
    )
    assert min(published.values()) >= k
    assert published[("*", "5", "*")] == 3 and published[("40-59", "3", "F")] == 3
    assert published_tuple["a0"] == ("30-39", "75", "F")
    assert published_tuple["e0"] == ("20-39", "7", "M")
    for row_id in ("h0", "h1", "u0"):
        assert published_tuple[row_id] == (None, None, None)
