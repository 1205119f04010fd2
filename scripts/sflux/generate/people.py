"""users.csv for the synthetic generator: one row per member, the same
people (user ids, names, cities) as vitals.csv and subscriptions.csv.

Everything here draws from its own seed stream (config.STREAM_USERS), so
adding users.csv changed no byte of the existing files. Rows are built
column-wise: Faker only fills small per-locale street pools, phone numbers,
postcodes and national ids are filled into fixed patterns with numpy, and
the few per-user Python loops (e-mail, Italian codice fiscale, IPv6) cost
about a second per million users.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sflux.generate.national_ids import Births, NATIONAL_IDS, ascii_fold, ascii_rows, fill_pattern
from sflux.generate.population import seeded_faker  # the shared, re-seeded Faker instances
from sflux.ingest.contract import ACCOUNT_STATUSES, GENDERS, USERS


SECONDS_PER_DAY = 86_400
AGE_YEARS = (18, 90)  # at the first generated day
NON_BINARY_SHARE = 0.02
STATUS_WEIGHTS = (0.90, 0.03, 0.07)  # active, suspended, closed
IPV6_SHARE = 0.15
IPV6_COMPRESSED_SHARE = 0.6  # of IPv6: a zero run, written with '::'
NEVER_LOGGED_IN_SHARE = 0.03
SIGNUP_BEFORE_PLAN_DAYS = 45  # created_at at most this long before the first plan
NO_PLAN_HISTORY_DAYS = 730  # members without a plan joined within ~2 years
STREET_POOL_SIZE = 300
TIER_PRICES_EUR = (9.99, 19.99, 39.99)  # per month, by tier rank; doubles beyond
DAYS_PER_MONTH = 30.44

# Faker's fr_BE locale has no street names of its own (English ones); fr_FR's
# read right in Brussels and Liège.
STREET_LOCALE = {"fr_BE": "fr_FR"}

# '#' a digit, '@' an upper-case letter. Prefixes follow the real city.
POSTCODES = {
    "Paris": "750##", "Marseille": "130##", "Lyon": "6900#", "Toulouse": "310##",
    "Nice": "06#00", "Saint-Étienne": "420##", "Villeneuve-d'Ascq": "596#0",
    "Berlin": "1####", "Hamburg": "2####", "München": "8####", "Köln": "5####",
    "Frankfurt am Main": "60###", "Düsseldorf": "40###",
    "Zürich": "80##", "Basel": "40##", "Bern": "30##", "Genève": "12##", "Lausanne": "10##",
    "Wien": "1##0", "Graz": "80##",
    "Roma": "001##", "Milano": "201##", "Napoli": "801##", "Torino": "101##",
    "L'Aquila": "67100", "Reggio nell'Emilia": "421##",
    "Madrid": "280##", "Barcelona": "080##", "València": "460##", "Sevilla": "410##",
    "A Coruña": "150##",
    "Lisboa": "1###-###", "Porto": "4###-###", "Coimbra": "30##-###",
    "Amsterdam": "10## @@", "Rotterdam": "30## @@", "Den Haag": "25## @@",
    "'s-Hertogenbosch": "52## @@",
    "Antwerpen": "20#0", "Gent": "90#0", "Bruxelles": "10#0", "Liège": "40#0",
    "Warszawa": "0#-###", "Kraków": "3#-###", "Łódź": "9#-###", "Wrocław": "5#-###",
    "Gdańsk": "80-###",
    "Praha": "1## 00", "Brno": "6## 00", "Ostrava": "7## 00",
    "Stockholm": "1## ##", "Göteborg": "4## ##", "Malmö": "2## ##",
    "København": "1###", "Aarhus": "80#0", "Helsinki": "00###", "Tampere": "33###",
    "Dublin": "D## @#@#", "Cork": "T## @#@#",
}
# Mobile numbers in international format, as members type them in.
PHONES = {
    "FR": ("+33 6 ## ## ## ##", "+33 7 ## ## ## ##"), "DE": ("+49 15# ########", "+49 17# #######"),
    "CH": ("+41 7# ### ## ##",), "AT": ("+43 66# #######",), "IT": ("+39 3## ### ####",),
    "ES": ("+34 6## ## ## ##",), "PT": ("+351 9# ### ####",), "NL": ("+31 6 ########",),
    "BE": ("+32 4## ## ## ##",), "PL": ("+48 5## ### ###", "+48 6## ### ###"),
    "CZ": ("+420 6## ### ###", "+420 7## ### ###"), "SE": ("+46 7# ### ## ##",),
    "DK": ("+45 ## ## ## ##",), "FI": ("+358 4# ### ####",), "IE": ("+353 8# ### ####",),
}
GLOBAL_MAIL = ("gmail.com", "gmail.com", "gmail.com", "outlook.com", "hotmail.com",
               "yahoo.com", "icloud.com", "proton.me")
LOCAL_MAIL = {
    "FR": ("orange.fr", "free.fr", "laposte.net", "sfr.fr"), "DE": ("gmx.de", "web.de", "t-online.de"),
    "CH": ("bluewin.ch", "gmx.ch"), "AT": ("gmx.at", "aon.at"), "IT": ("libero.it", "virgilio.it"),
    "ES": ("telefonica.net", "yahoo.es"), "PT": ("sapo.pt",), "NL": ("ziggo.nl", "kpnmail.nl"),
    "BE": ("skynet.be", "telenet.be"), "PL": ("wp.pl", "onet.pl", "o2.pl"),
    "CZ": ("seznam.cz", "centrum.cz"), "SE": ("telia.com",), "DK": ("mail.dk",),
    "FI": ("elisanet.fi",), "IE": ("eircom.net",),
}
LOCAL_MAIL_SHARE = 0.4
IPV4_FIRST_OCTETS = np.array([31, 46, 62, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89,
                              90, 91, 92, 93, 94, 95, 109, 176, 178, 185, 188, 193, 194, 195,
                              212, 213, 217])
IPV6_PREFIXES = (0x2A01, 0x2A02, 0x2001, 0x2A00, 0x2A03)


def country_of(locale: str) -> str:
    """ISO 3166-1 alpha-2 from a Faker locale (de_CH -> CH)."""
    return locale.split("_", 1)[1]


# --- the members ---------------------------------------------------------------


@dataclass
class Users:
    """users.csv as columns, in user order (index = position in user_id_list)."""

    columns: dict[str, pa.Array]  # the contract columns, typed, before faults
    created_at: np.ndarray  # epoch seconds
    last_login_at: np.ndarray  # epoch seconds, -1 = never
    status: np.ndarray  # index into ACCOUNT_STATUSES
    ip_address: list[str]
    fault_kinds: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.created_at)


@dataclass(frozen=True)
class Plans:
    """Per user, from subscriptions.csv: first start, current tier, value."""

    first_start: np.ndarray  # days since epoch, -1 = no subscription
    tier: list[str | None]
    value_cents: np.ndarray


def plans_from_rows(rows: Sequence[tuple[str, str, str]], user_ids: Sequence[str],
                    tiers: Sequence[str], start: date) -> Plans:
    """Rows are sorted by user and start date: the first row of a user is the
    first plan, the last the current one (the contract's 'latest start_date
    wins'). Value: months on each plan until the first generated day."""
    index = {u: i for i, u in enumerate(user_ids)}
    n = len(user_ids)
    first = np.full(n, -1, dtype=np.int64)
    tier: list[str | None] = [None] * n
    value = np.zeros(n, dtype=np.int64)
    prices = [TIER_PRICES_EUR[min(r, len(TIER_PRICES_EUR) - 1)] * 2 ** max(0, r - 2)
              for r in range(len(tiers))]
    rank = {t: r for r, t in enumerate(tiers)}
    epoch = date(1970, 1, 1)
    start_day = (start - epoch).days
    history: dict[int, list[tuple[int, str]]] = {}
    for user_id, plan, begins in dict.fromkeys(rows):  # a replayed line adds nothing
        i = index[user_id]
        day = (date.fromisoformat(begins) - epoch).days
        history.setdefault(i, []).append((day, plan))
    for i, plans in history.items():
        first[i] = plans[0][0]
        tier[i] = plans[-1][1]
        ends = [d for d, _ in plans[1:]] + [start_day]
        euros = sum(max(0, end - begin) / DAYS_PER_MONTH * prices[rank[plan]]
                    for (begin, plan), end in zip(plans, ends))
        value[i] = round(euros * 100)
    return Plans(first, tier, value)


def street_pools(locales: Sequence[str], seed: int) -> dict[str, list[str]]:
    pools = {}
    for k, locale in enumerate(sorted(locales)):
        fake = seeded_faker(STREET_LOCALE.get(locale, locale))
        fake.seed_instance(seed + k)
        pools[locale] = list(dict.fromkeys(fake.street_address() for _ in range(STREET_POOL_SIZE)))
    return pools


def emails(first: Sequence[str], last: Sequence[str], country: Sequence[str],
           rng: np.random.Generator) -> list[str]:
    """first.last@domain and the usual variants, ASCII-folded, unique: a
    clash gets a number, as providers suggest."""
    n = len(first)
    style = rng.integers(0, 6, n)
    local_share = rng.random(n) < LOCAL_MAIL_SHARE
    pick = rng.random(n)
    suffix = rng.integers(1, 100, n)
    seen: set[str] = set()
    out = []
    for i in range(n):
        f = "".join(c for c in ascii_fold(first[i]).lower() if c.isalnum()) or "user"
        l_ = "".join(c for c in ascii_fold(last[i]).lower() if c.isalnum()) or "member"
        s = style[i]
        name = (f"{f}.{l_}", f"{f}{l_}", f"{f[0]}.{l_}", f"{f}_{l_}", f"{f}.{l_}{suffix[i]}",
                f"{l_}.{f}")[s]
        domains = LOCAL_MAIL.get(country[i]) if local_share[i] else None
        domains = domains or GLOBAL_MAIL
        address = f"{name}@{domains[int(pick[i] * len(domains))]}"
        if address in seen:
            at = address.index("@")
            address = f"{address[:at]}{i + 1}{address[at:]}"
        seen.add(address)
        out.append(address)
    return out


def ip_addresses(n: int, rng: np.random.Generator) -> list[str]:
    """Public-looking IPv4 (European ranges), and IPv6 for IPV6_SHARE:
    canonical compressed text, '::' where a zero run was drawn."""
    v6 = rng.random(n) < IPV6_SHARE
    octets = np.stack([IPV4_FIRST_OCTETS[rng.integers(0, len(IPV4_FIRST_OCTETS), n)],
                       rng.integers(0, 256, n), rng.integers(0, 256, n),
                       rng.integers(1, 255, n)], axis=1)
    v4 = pc.binary_join_element_wise(*[pa.array(octets[:, k]).cast(pa.string()) for k in range(4)],
                                     ".").to_pylist()
    rows = np.flatnonzero(v6)
    groups = rng.integers(0, 2**16, (len(rows), 8))
    groups[:, 0] = np.array(IPV6_PREFIXES)[rng.integers(0, len(IPV6_PREFIXES), len(rows))]
    zero_run = rng.random(len(rows)) < IPV6_COMPRESSED_SHARE
    run_start = rng.integers(2, 5, len(rows))
    run_length = rng.integers(2, 4, len(rows))
    for k, i in enumerate(rows):
        g = groups[k]
        if zero_run[k]:
            g[run_start[k]:run_start[k] + run_length[k]] = 0
        else:
            g[g == 0] = 1  # no accidental '::'
        value = 0
        for part in g:
            value = (value << 16) | int(part)
        v4[i] = ipaddress.IPv6Address(value).compressed
    return v4


def build_users(user_ids: pa.Array, names, cities: pa.Array, city_index: np.ndarray,
                city_locales: Sequence[str], plans: Plans, start: date, days: int,
                consent_share: float, rng: np.random.Generator,
                tenant: Sequence[str | None] | None = None) -> Users:
    """Every column of users.csv, before faults. `names` is population.Names;
    `city_locales` the Faker locale of each pool city; `tenant` each member's
    sponsor (None: a direct consumer; default: everyone)."""
    n = len(city_index)
    epoch = date(1970, 1, 1)
    start_day = (start - epoch).days
    pool_country = [country_of(loc) for loc in city_locales]
    country = [pool_country[c] for c in city_index.tolist()]
    country_arr = np.array(pool_country)[city_index] if n else np.array([], dtype="<U2")

    # Sex as drawn with the name; a small share identify as non-binary.
    female = np.asarray(names.female, dtype=bool)
    non_binary = rng.random(n) < NON_BINARY_SHARE
    gender = np.where(non_binary, 2, np.where(female, 0, 1))

    age_days = (AGE_YEARS[0] * 365.25
                + rng.beta(2.0, 3.0, n) * (AGE_YEARS[1] - AGE_YEARS[0]) * 365.25).astype(np.int64)
    birth_day = start_day - age_days
    births64 = birth_day.astype("datetime64[D]")
    year = births64.astype("datetime64[Y]").astype(np.int64) + 1970
    month = births64.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (births64 - births64.astype("datetime64[M]")).astype(np.int64) + 1

    # Joined before the first plan; members without one within ~2 years,
    # some of them during the generated days (they get a signup event).
    span = SECONDS_PER_DAY * np.where(plans.first_start >= 0, SIGNUP_BEFORE_PLAN_DAYS, 0)
    before_plan = plans.first_start * SECONDS_PER_DAY - 1 - (rng.random(n) * span).astype(np.int64)
    no_plan_from = (start_day - NO_PLAN_HISTORY_DAYS) * SECONDS_PER_DAY
    no_plan_to = (start_day + days) * SECONDS_PER_DAY
    no_plan = no_plan_from + (rng.random(n) * (no_plan_to - no_plan_from)).astype(np.int64)
    created = np.where(plans.first_start >= 0, before_plan, no_plan)

    start_s = start_day * SECONDS_PER_DAY
    logged_in = (rng.random(n) >= NEVER_LOGGED_IN_SHARE) & (created < start_s)
    last_login = created + (rng.random(n) * np.maximum(start_s - created, 0)).astype(np.int64)
    last_login = np.where(logged_in, last_login, -1)

    status = rng.choice(len(ACCOUNT_STATUSES), size=n, p=np.array(STATUS_WEIGHTS))
    shop = np.where(rng.random(n) < 0.3, rng.gamma(2.0, 1500.0, n), 0).astype(np.int64)
    value_cents = plans.value_cents + shop
    consent = rng.random(n) < consent_share

    # Contact details from the city's locale.
    pool_locales = sorted(set(city_locales))
    streets = street_pools(pool_locales, int(rng.integers(2**31)))
    pick = rng.random(n)
    locale_of_user = [city_locales[c] for c in city_index.tolist()]
    street = [streets[loc][int(p * len(streets[loc]))] for loc, p in zip(locale_of_user, pick)]

    phone = np.empty(n, dtype=object)
    postcode = np.empty(n, dtype=object)
    national = np.empty(n, dtype=object)
    city_names = cities.to_pylist()
    for c, name in enumerate(city_names):
        rows = np.flatnonzero(city_index == c)
        postcode[rows] = ascii_rows(fill_pattern(POSTCODES.get(name, "#####"), len(rows), rng)
                                    ).to_pylist()
    for cc in sorted(set(pool_country)):
        rows = np.flatnonzero(country_arr == cc)
        patterns = PHONES[cc]
        which = rng.integers(0, len(patterns), len(rows))
        numbers = np.empty(len(rows), dtype=object)
        for k, pattern in enumerate(patterns):
            sel = np.flatnonzero(which == k)
            numbers[sel] = ascii_rows(fill_pattern(pattern, len(sel), rng)).to_pylist()
        phone[rows] = numbers
        births = Births(year[rows], month[rows], day[rows], female[rows],
                        [names.first[i] for i in rows], [names.last[i] for i in rows])
        ids = NATIONAL_IDS[cc](births, rng)
        national[rows] = ids if isinstance(ids, list) else ascii_rows(ids).to_pylist()

    mail = emails(names.first, names.last, country, rng)
    ips = ip_addresses(n, rng)
    tier = pa.array(plans.tier, pa.string())
    columns = {
        "user_id": user_ids,
        "full_name": pa.array(names.full, pa.string()),
        "email": pa.array(mail, pa.string()),
        "phone": pa.array(phone.tolist(), pa.string()),
        "date_of_birth": pa.array(birth_day.astype(np.int32), pa.date32()),
        "gender": pa.array(np.array(GENDERS)[gender].tolist() if n else [], pa.string()),
        "street_address": pa.array(street, pa.string()),
        "postcode": pa.array(postcode.tolist(), pa.string()),
        "city": cities.take(pa.array(city_index)),
        "country": pa.array(country, pa.string()),
        "ip_address": pa.array(ips, pa.string()),
        "national_id": pa.array(national.tolist(), pa.string()),
        "created_at": pa.array(created, pa.timestamp("s")),
        "last_login_at": pa.array(last_login, pa.timestamp("s"), mask=last_login < 0),
        "account_status": pa.array(np.array(ACCOUNT_STATUSES)[status].tolist() if n else [],
                                   pa.string()),
        "subscription_tier": tier,
        "lifetime_value_eur": pa.array(value_cents, pa.int64()),  # cents; formatted on write
        "consent_analytics": pa.array(consent, pa.bool_()),
        "tenant_id": pa.array(list(tenant) if tenant is not None else [None] * n, pa.string()),
    }
    assert list(columns) == USERS.header
    return Users(columns, created, last_login, status, ips)


# --- faults and writing ----------------------------------------------------------

USER_FAULT_KINDS = ("bad_consent_analytics", "bad_date_of_birth", "implausible_date_of_birth",
                    "missing_email", "unknown_gender", "bad_created_at")


def money_text(cents: np.ndarray) -> pa.Array:
    """Cents -> '1234.50' (two decimals, no exponent)."""
    cents = np.asarray(cents, dtype=np.int64)
    whole = pa.array(np.abs(cents) // 100).cast(pa.string())
    frac = pc.utf8_lpad(pa.array(np.abs(cents) % 100).cast(pa.string()), 2, "0")
    sign = pa.array(np.where(cents < 0, "-", ""))
    return pc.binary_join_element_wise(pc.binary_join_element_wise(sign, whole, ""), frac, ".")


def users_text_table(users: Users, last_login: np.ndarray, bad_rate: float,
                     duplicate_rate: float, rng: np.random.Generator) -> tuple[pa.Table, dict]:
    """All columns as text, faults injected (one per faulty row), duplicated
    rows spliced in right after their original. Returns the table and the
    count per fault kind."""
    n = len(users)
    cols = dict(users.columns)
    cols["last_login_at"] = pa.array(last_login, pa.timestamp("s"), mask=last_login < 0)
    text = {}
    for name, arr in cols.items():
        if name == "lifetime_value_eur":
            text[name] = money_text(arr.to_numpy())
        elif pa.types.is_string(arr.type):
            text[name] = arr
        else:
            text[name] = arr.cast(pa.string())
    faulty = rng.random(n) < bad_rate
    kind = rng.integers(0, len(USER_FAULT_KINDS), n)
    counts = {k: 0 for k in USER_FAULT_KINDS}
    variants = {
        "bad_consent_analytics": ("consent_analytics", ("yes", "TRUE", "1", "n")),
        "bad_date_of_birth": ("date_of_birth", ("1987-02-30", "31/12/1980", "1979-13-01")),
        "implausible_date_of_birth": ("date_of_birth", ("2091-05-17", "1850-01-01")),
        "missing_email": ("email", ("",)),
        "unknown_gender": ("gender", ("F", "M", "unknown")),
        "bad_created_at": ("created_at", ("2024-03-01T10:00:00Z", "2024-03-01")),
    }
    for k, name in enumerate(USER_FAULT_KINDS):
        rows = np.flatnonzero(faulty & (kind == k))
        counts[name] = len(rows)
        if not len(rows):
            continue
        column, values = variants[name]
        chosen = np.array(values, dtype=object)[rng.integers(0, len(values), len(rows))]
        replaced = np.array(text[column].to_pylist(), dtype=object)
        replaced[rows] = chosen
        text[column] = pa.array(replaced.tolist(), pa.string())
    copies = np.flatnonzero(~faulty & (rng.random(n) < duplicate_rate))
    order = np.sort(np.r_[np.arange(n) * 2, copies * 2 + 1])
    source = order // 2
    table = pa.table({k: v.take(pa.array(source)) for k, v in text.items()})
    counts["duplicate_user_id"] = len(copies)
    return table, counts


