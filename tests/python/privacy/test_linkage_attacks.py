"""Linkage attacks on the anonymized zone as a whole (issue 11, section 1),
performed by an insider who can read every relation of `anonymized`.

Each relation declares its quasi-identifiers and the column that names a
person in its YAML `meta` (`quasi_identifiers`, `person_key`); the tests
read them from the manifest, so a new relation is attacked as soon as it
exists, and one that declares nothing fails here. The attacks:

- join every pair of relations on every column they share, and on every
  pair of pseudonym columns whatever their names, and look for a
  combination of the joined quasi-identifiers held by fewer than k people;
- anti-join every pair on their pseudonyms to list who k-anonymity
  suppressed;
- the issue's own join: vitals to the users table, putting the exact city
  back next to the generalized attributes;
- look for contact-data fragments (initials, email prefix, phone digits,
  IP network) anywhere in the zone.

Read-only, on the shared warehouse (`built`).
"""

from __future__ import annotations

import itertools
import json
import os
import re
from pathlib import Path

import pytest

from sflux.privacy import keys

K = 5
ZONE = "anonymized"


def _manifest() -> dict:
    return json.loads((Path(os.environ["DBT_TARGET_PATH"]) / "manifest.json").read_text(encoding="utf-8"))


def _zone(spark) -> dict[str, dict]:
    """Every stored relation of the zone: {name: {columns, qis, person, pseudonyms}}."""
    nodes = {n["alias"]: n for n in _manifest()["nodes"].values() if n["resource_type"] == "model"}
    relations, undeclared = {}, []
    for table in spark.catalog.listTables(ZONE):
        if table.isTemporary or table.name.startswith("_"):
            continue
        node = nodes.get(table.name)
        meta = (node or {}).get("config", {}).get("meta", {})
        if node is None or "quasi_identifiers" not in meta:
            undeclared.append(table.name)
            continue
        columns = [f.name for f in spark.table(f"{ZONE}.{table.name}").schema.fields]
        pseudonyms = [c for c in columns if c.endswith("_pseudonym_id")
                      or node["columns"].get(c, {}).get("meta", {}).get("pii") == "pseudonym"]
        relations[table.name] = {"columns": columns, "qis": list(meta["quasi_identifiers"]),
                                 "person": meta.get("person_key"), "pseudonyms": pseudonyms}
    assert not undeclared, f"relations of {ZONE} that declare no meta.quasi_identifiers: {undeclared}"
    return relations


@pytest.fixture(scope="module")
def zone(spark, built) -> dict[str, dict]:
    relations = _zone(spark)
    assert {"stg_wearables__vitals", "int_users_k_anonymized", "stg_app__events"} <= set(relations)
    return relations


def _side(name: str, rel: dict, alias: str, keys_: list[str]) -> tuple[str, list[str], list[str]]:
    """A distinct projection of one relation on the join keys, its person and
    its quasi-identifiers (so a join on a constant column stays small)."""
    person = [rel["person"]] if rel["person"] else []
    cols = list(dict.fromkeys(keys_ + person + rel["qis"]))
    sql = f"(select distinct {', '.join(f'`{c}`' for c in cols)} from {ZONE}.{name}) as {alias}"
    return sql, [f"{alias}.`{q}`" for q in rel["qis"]], [f"{alias}.`{p}`" for p in person]


def _small_groups(spark, left: tuple, right: tuple | None, on: list[tuple[str, str]]) -> list:
    """Combinations of the joined quasi-identifiers that fewer than K distinct
    people hold, for each side's person."""
    (lsql, lqis, lperson) = left
    if right is None:
        source, qis, persons = lsql, lqis, lperson
    else:
        rsql, rqis, rperson = right
        condition = " and ".join(f"a.`{lc}` = b.`{rc}`" for lc, rc in on)
        source, qis, persons = f"{lsql} join {rsql} on {condition}", lqis + rqis, lperson + rperson
    if not qis:
        return []
    found = []
    for person in persons:
        found += spark.sql(
            f"select {', '.join(qis)}, count(distinct {person}) as n from {source}"
            f" group by {', '.join(qis)} having count(distinct {person}) < {K}").collect()
    return found


def test_every_relation_and_every_joined_pair_is_k_anonymous(spark, zone):
    offences, tried = [], 0
    for name, rel in zone.items():
        tried += 1
        if small := _small_groups(spark, _side(name, rel, "a", []), None, []):
            offences.append(f"{name} alone: {small[:3]}")
    for (left, lrel), (right, rrel) in itertools.combinations(sorted(zone.items()), 2):
        shared = [(c, c) for c in lrel["columns"] if c in rrel["columns"]]
        shared += [(lc, rc) for lc in lrel["pseudonyms"] for rc in rrel["pseudonyms"] if lc != rc]
        attempts = [[pair] for pair in shared] + ([shared] if len(shared) > 1 else [])
        for on in attempts:
            tried += 1
            a = _side(left, lrel, "a", [lc for lc, _ in on])
            b = _side(right, rrel, "b", [rc for _, rc in on])
            if small := _small_groups(spark, a, b, on):
                offences.append(f"{left} x {right} on {on}: {small[:3]}")
    assert tried > len(zone)
    assert not offences, "\n".join(offences)


def _subject_pseudonyms(spark, table: str) -> set[str]:
    return {r[0] for r in spark.sql(f"select distinct user_pseudonym_id from {ZONE}.{table}").collect()}


def test_no_anti_join_lists_the_members_k_anonymity_suppressed(spark, zone, pseudonym_key,
                                                                 consenting_users):
    """The issue's anti-join: members of vitals (or events) missing from the
    users table are exactly the ones k-anonymity suppressed. Tried from every
    relation, on every pair of pseudonym columns, against every relation that
    suppresses members (it carries k_anonymity_level): the anti-join must
    keep every member, i.e. the join must match nobody, so being absent from
    the users table tells nothing."""
    subjects = {keys.pseudonym(u, pseudonym_key) for u in consenting_users}
    published = {r[0] for r in spark.table(f"{ZONE}.int_users_k_anonymized")
                 .select("profile_pseudonym_id").collect()}
    suppressed = {s for s in subjects if keys.domain_pseudonym(s, pseudonym_key, "users") not in published}
    assert len(published) == len(subjects) - len(suppressed)
    targets = [name for name, rel in zone.items() if "k_anonymity_level" in rel["columns"]]
    assert targets == ["int_users_k_anonymized"]
    separated, tried = [], 0
    for left, lrel in zone.items():
        for right in targets:
            if left == right:
                continue
            for lc, rc in itertools.product(lrel["pseudonyms"], zone[right]["pseudonyms"]):
                tried += 1
                members = {r[0] for r in spark.sql(f"select distinct `{lc}` from {ZONE}.{left}").collect()}
                missing = {r[0] for r in spark.sql(
                    f"select distinct a.`{lc}` from {ZONE}.{left} as a left anti join {ZONE}.{right} as b"
                    f" on a.`{lc}` = b.`{rc}`").collect()}
                if missing != members:
                    separated.append(f"{left}.{lc} minus {right}.{rc}: keeps {len(missing)} of "
                                     f"{len(members)}, {len(missing & suppressed)} of them suppressed")
    assert tried and not separated, separated


def test_vitals_no_longer_join_the_users_table(spark, zone):
    """The issue's join: readings to the k-anonymous users table on the
    pseudonym put the exact city next to the generalized attributes."""
    vitals, users = zone["stg_wearables__vitals"], zone["int_users_k_anonymized"]
    assert "city" not in vitals["columns"] and "full_name_masked" not in vitals["columns"]
    assert "user_pseudonym_id" not in users["columns"]
    for column in users["pseudonyms"]:
        joined = spark.sql(f"select count(*) from {ZONE}.stg_wearables__vitals as v"
                           f" join {ZONE}.int_users_k_anonymized as u"
                           f" on v.user_pseudonym_id = u.`{column}`").collect()[0][0]
        assert joined == 0, f"vitals join the users table on {column}"


MASKED_SHAPES = {
    "masked name": r"^[^ ]\*\*\*( [^ ]\*\*\*)*$",
    "masked email": r"^[^@]{1,2}\*\*\*@\*\*\*\.[^.@]+$",
    "masked phone": r"^\*\*\*[0-9]{4}$",
    "IP network": r"^([0-9]{1,3}\.){3}0/24$|::/48$",
}


def test_no_contact_data_fragment_is_left_in_the_zone(spark, zone):
    """Masked contact data are quasi-identifiers that serve no analysis: none
    of their shapes may appear in any string column of the zone."""
    found = []
    for name in zone:
        df = spark.table(f"{ZONE}.{name}")
        for field in df.schema.fields:
            if field.dataType.simpleString() != "string":
                continue
            for label, shape in MASKED_SHAPES.items():
                if spark.sql(f"select 1 from {ZONE}.{name} where `{field.name}` rlike :shape limit 1",
                             args={"shape": shape}).collect():
                    found.append(f"{name}.{field.name}: {label}")
    assert not found, found


def test_the_masked_shapes_are_recognised():
    """The scan above would see a masked value if one were left."""
    samples = {"masked name": "J*** D***", "masked email": "jo***@***.com",
               "masked phone": "***1234", "IP network": "192.168.17.0/24"}
    for label, value in samples.items():
        assert re.search(MASKED_SHAPES[label], value), label
