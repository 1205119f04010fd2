"""The raw landing contract (docs/landing-contract.md).

One place defines, per dataset, which files belong to it, their format (CSV
with an exact header, or JSON Lines), how each field is typed and validated,
row rules across fields, the key that must be unique, and the raw table it
lands in. The generator writes files that follow it; the loader accepts any
file that does.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from sflux.core import paths
from sflux.core.errors import UserError
from sflux.privacy import policies

RAW_SCHEMA = "raw"
QUARANTINE_TABLE = f"{RAW_SCHEMA}.quarantine"
# Written by the GDPR erasure (scripts/gdpr.py): pseudonyms of erased subjects.
ERASURE_REGISTER_TABLE = f"{RAW_SCHEMA}.erasure_register"
SUBJECT_COLUMN = "user_id"
TIMESTAMP_FORMAT = "yyyy-MM-dd HH:mm:ss"  # Spark pattern; UTC
DATE_FORMAT = "yyyy-MM-dd"


# Column kinds and the Spark type each lands as.
SPARK_TYPES = {
    "string": "string",
    "tier": "string",  # a subscription_type of the tiers seed
    "enum": "string",  # one of Column.values, exactly
    "timestamp": "timestamp",  # TIMESTAMP_FORMAT
    "date": "date",  # DATE_FORMAT
    "int": "int",
    "bool": "boolean",  # exactly true or false
    "decimal(12,2)": "decimal(12,2)",  # plain digits, optional sign, up to 2 decimals
    "decimal(10,2)": "decimal(10,2)",
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # a key of SPARK_TYPES
    required: bool = True  # False: an empty field (CSV) or a null/absent one (JSON) is NULL
    values: tuple[str, ...] = ()  # kind "enum": the accepted values
    pattern: str | None = None  # a Java regex a "string" value must match
    # CSV only, trailing columns only: a file whose header leaves this column
    # out still loads (its value is NULL), so landing files written before
    # the column existed keep loading.
    may_be_absent: bool = False

    @property
    def spark_type(self) -> str:
        return SPARK_TYPES[self.kind]


@dataclass(frozen=True)
class RowRule:
    """A check across typed fields: rows where ``valid`` (Spark SQL) is not
    true are quarantined with ``reason``. Only evaluated on rows whose
    fields all parsed."""

    valid: str
    reason: str


@dataclass(frozen=True)
class Dataset:
    name: str
    file_globs: tuple[str, ...]
    columns: tuple[Column, ...]
    table: str
    partition_by: tuple[tuple[str, str], ...] = field(default=())  # (name, SQL expr)
    file_format: str = "csv"  # "csv": header line + RFC 4180; "jsonl": one object per line
    required: bool = True  # False: a landing directory may hold no file of it
    # Columns that must be unique together; duplicates: the first occurrence
    # loads, the rest are quarantined.
    unique_key: tuple[str, ...] = ()
    rules: tuple[RowRule, ...] = ()
    # Timestamp columns that may not be later than the load time plus the
    # clock-skew tolerance (dbt var clock_skew_tolerance_minutes): a row dated
    # in the future is quarantined, since it could override every real event
    # until that date.
    not_after_load: tuple[str, ...] = ()

    @property
    def has_header(self) -> bool:
        return self.file_format == "csv"

    @property
    def header(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def headers(self) -> tuple[list[str], ...]:
        """Accepted CSV headers: every column, then (if the trailing columns
        may be absent) every column but those."""
        short = [c.name for c in self.columns if not c.may_be_absent]
        return (self.header, short) if len(short) < len(self.columns) else (self.header,)

    @property
    def holds_subjects(self) -> bool:
        """Rows name a data subject: erased subjects are skipped on load."""
        return SUBJECT_COLUMN in self.header

    def files(self, directory: Path) -> list[Path]:
        found: set[Path] = set()
        for pattern in self.file_globs:
            found.update(p for p in directory.glob(pattern) if p.is_file())
        return sorted(found)


VITALS = Dataset(
    name="vitals",
    file_globs=("vitals.csv", "vitals*.csv"),
    columns=(
        Column("user_id", "string"),
        Column("full_name", "string"),
        Column("city", "string"),
        Column("device_id", "string"),
        Column("reading_ts", "timestamp"),
        Column("heart_rate", "int", required=False),
    ),
    table=f"{RAW_SCHEMA}.vitals",
    partition_by=(("reading_date", "to_date(reading_ts)"),),
)

SUBSCRIPTIONS = Dataset(
    name="subscriptions",
    file_globs=("subscriptions.csv",),
    columns=(
        Column("user_id", "string"),
        Column("subscription_type", "tier"),
        Column("start_date", "date"),
    ),
    table=f"{RAW_SCHEMA}.subscriptions",
)

GENDERS = ("female", "male", "non_binary")
ACCOUNT_STATUSES = ("active", "suspended", "closed")
EVENT_TYPES = (
    "page_view", "click", "search", "add_to_cart", "purchase", "video_play",
    "video_complete", "login", "logout", "signup",
)
DEVICE_TYPES = ("mobile", "desktop", "tablet", "watch")
# A sponsoring organization (employer, insurer): the API's tenant id shape
# (sflux.api.tokens.TENANT_ID_PATTERN), so every landed tenant can be served.
TENANT_ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

USERS = Dataset(
    name="users",
    file_globs=("users.csv",),
    columns=(
        Column("user_id", "string"),
        Column("full_name", "string"),
        Column("email", "string"),
        Column("phone", "string"),
        Column("date_of_birth", "date"),
        Column("gender", "enum", values=GENDERS),
        Column("street_address", "string"),
        Column("postcode", "string"),
        Column("city", "string"),
        Column("country", "string", pattern="^[A-Z]{2}$"),  # ISO 3166-1 alpha-2
        Column("ip_address", "string"),
        Column("national_id", "string"),
        Column("created_at", "timestamp"),
        Column("last_login_at", "timestamp", required=False),
        Column("account_status", "enum", values=ACCOUNT_STATUSES),
        Column("subscription_tier", "tier", required=False),  # empty: no subscription
        Column("lifetime_value_eur", "decimal(12,2)"),
        Column("consent_analytics", "bool"),
        # Empty: a direct consumer. Last, and optional in the header: a
        # users.csv without it loads, every member a direct consumer.
        Column("tenant_id", "string", required=False, pattern=TENANT_ID_PATTERN, may_be_absent=True),
    ),
    table=f"{RAW_SCHEMA}.users",
    required=False,
    unique_key=("user_id",),
    rules=(
        RowRule(
            "date_of_birth >= date'1900-01-01' and date_of_birth <= to_date(created_at)",
            "implausible date_of_birth",
        ),
    ),
)

# JSON Lines: one object per line, these fields and no others; amount_eur is
# a JSON number, every other field a JSON string.
EVENTS = Dataset(
    name="events",
    file_globs=("events.jsonl", "events*.jsonl"),
    columns=(
        Column("event_id", "string"),
        Column("user_id", "string"),
        Column("session_id", "string"),
        Column("event_type", "enum", values=EVENT_TYPES),
        Column("event_ts", "timestamp"),
        Column("device_type", "enum", values=DEVICE_TYPES),
        Column("browser", "string"),
        Column("page", "string"),
        Column("referrer", "string", required=False),
        Column("ip_address", "string"),
        Column("amount_eur", "decimal(10,2)", required=False),
    ),
    table=f"{RAW_SCHEMA}.events",
    partition_by=(("event_date", "to_date(event_ts)"),),
    file_format="jsonl",
    required=False,
    unique_key=("event_id",),
    rules=(
        RowRule("event_type = 'purchase' or amount_eur is null", "amount_eur on a non-purchase event"),
        RowRule("event_type != 'purchase' or amount_eur is not null", "missing amount_eur on a purchase"),
        RowRule("amount_eur is null or amount_eur > 0", "amount_eur not positive"),
    ),
)

# Consent changes as dated events. More consent types can be listed here; the
# loader quarantines any other value.
CONSENT_TYPES = ("analytics",)
CONSENT_ACTIONS = ("grant", "withdraw")

CONSENT_EVENTS = Dataset(
    name="consent_events",
    file_globs=("consent_events.csv", "consent_events*.csv"),
    columns=(
        Column("user_id", "string"),
        Column("consent_type", "enum", values=CONSENT_TYPES),
        Column("action", "enum", values=CONSENT_ACTIONS),
        Column("event_ts", "timestamp"),
    ),
    table=f"{RAW_SCHEMA}.consent_events",
    required=False,
    unique_key=("user_id", "consent_type", "action", "event_ts"),  # exact duplicates
    # A grant dated 2099 would win over every real withdrawal until then.
    not_after_load=("event_ts",),
)

DATASETS: tuple[Dataset, ...] = (SUBSCRIPTIONS, VITALS, USERS, EVENTS, CONSENT_EVENTS)


def clock_skew_tolerance() -> dt.timedelta:
    """How far past the load time a ``not_after_load`` timestamp may be (the
    sender's clock running a little ahead), from the dbt var
    clock_skew_tolerance_minutes: base_app__analytics_consent applies the same
    tolerance to the build time."""
    minutes = policies.project_var("clock_skew_tolerance_minutes")
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 0:
        raise UserError(f"var clock_skew_tolerance_minutes must be a whole number >= 0 (got {minutes!r})")
    return dt.timedelta(minutes=minutes)


def subscription_tiers() -> list[str]:
    """Tier names, in rank order, from the dbt seed (the single source)."""
    with paths.tiers_seed().open(encoding="utf-8", newline="") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda r: int(r["tier_rank"]))
    return [row["subscription_type"] for row in rows]
