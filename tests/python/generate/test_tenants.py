"""The generator's tenants (users.csv tenant_id): realistic, unequal
sponsors, some small enough that their cells must be suppressed, drawn
from a stream of their own so no other column changes."""

from __future__ import annotations

import csv
import re
from collections import Counter

import numpy as np
import pytest

from sflux.generate import run as gen_run
from sflux.generate.population import zipf_weights
from sflux.generate.tenants import SPONSORS, assign_tenants
from sflux.ingest.contract import TENANT_ID_PATTERN, USERS
from test_generator import small_config


def test_sponsors_are_unequal_and_employers_gather_in_their_home_city():
    city_index = np.random.default_rng(1).choice(12, size=20_000, p=zipf_weights(12))
    tenant = assign_tenants(city_index, zipf_weights(12), np.random.default_rng(2))
    sizes = Counter(tenant)
    direct = sizes.pop(None)
    assert 0.4 < direct / len(tenant) < 0.7
    assert set(sizes) == {s.tenant_id for s in SPONSORS}
    ordered = sorted(sizes.values())
    assert ordered[-1] > 10 * ordered[0], sizes  # one large, one tiny
    largest_city = int(np.argmax(zipf_weights(12)))
    acme = [c for c, t in zip(city_index.tolist(), tenant) if t == "acme-works"]
    assert Counter(acme).most_common(1)[0][0] == largest_city
    assert acme.count(largest_city) / len(acme) > 0.8
    assert all(re.fullmatch(TENANT_ID_PATTERN.strip("^$"), t) for t in sizes)


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], list[dict]]:
    out = tmp_path_factory.mktemp("tenants")
    gen_run.generate(small_config(out, users=250, days=1, bad_user_rate=0.0, duplicate_user_rate=0.0),
                     progress=False)
    with (out / "users.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle)), USERS.header


def test_users_csv_has_tenants_of_unequal_sizes_some_small(users):
    rows, header = users
    assert header[-1] == "tenant_id" and list(rows[0]) == header
    sizes = Counter(r["tenant_id"] for r in rows)
    direct = sizes.pop("")
    assert direct > 0 and len(sizes) >= 4
    assert max(sizes.values()) >= 25
    assert min(sizes.values()) < 5, sizes  # suppressed wherever it appears
