"""Detokenization: the one way back from a vault token to the raw value.

The token vault (raw.token_vault, built by models/restricted/token_vault.sql)
never leaves the restricted zone. Looking a token up here is audited: each
call, found or not, appends a row to raw.privacy_audit_log with the reason
given, the token's domain and the pseudonym of the member it belongs to;
the value itself is returned to the caller only, never logged.

Before anything is looked up, the key is checked against
raw.pseudonym_key_registry (a wrong key would audit a pseudonym that
matches nobody), and a reason holding personal data (a raw id, the value,
contact data, ...) is refused: the reason is stored in the audit log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pyspark.sql import SparkSession

from sflux.core.errors import UserError
from sflux.core.spark import table_exists
from sflux.privacy import audit, keys
from sflux.privacy.free_text import id_like_words, pii_in_text
from sflux.privacy.policies import source_policies, tokenized_columns

VAULT_TABLE = "raw.token_vault"
TOKEN_PATTERN = re.compile(r"tok_[0-9a-f]{32}")


@dataclass(frozen=True)
class Detokenized:
    token: str
    domain: str
    value: str
    subject_pseudonym_id: str | None
    audit_id: str


def _subject_pseudonym(spark: SparkSession, domain: str, value: str) -> str | None:
    """Pseudonym of the member whose raw column holds `value`, computed in
    Spark with the same keyed HMAC as the models (the key stays in the JVM)."""
    for policy in tokenized_columns(domain):
        if not table_exists(spark, policy.table):
            continue
        rows = spark.sql(
            f"select distinct {keys.pseudonym_sql('user_id')}"
            f" from {policy.table} where `{policy.column}` = :value",
            args={"value": value},
        ).collect()
        if rows:
            return rows[0][0]
    return None


def _known_ids(spark: SparkSession, words: list[str]) -> list[str]:
    """The `words` that are raw ids of someone (a raw column the models
    pseudonymize holds them)."""
    tables = sorted({p.table for p in source_policies()
                     if p.column == "user_id" and p.treatment == "pseudonymize" and table_exists(spark, p.table)})
    if not words or not tables:
        return []
    params = {f"w{i}": w for i, w in enumerate(words)}
    wanted = ", ".join(f":{name}" for name in params)
    union = " union ".join(f"select user_id from {t} where user_id in ({wanted})" for t in tables)
    return [r[0] for r in spark.sql(union, args=params).collect()]


def _refuse_personal_reason(spark: SparkSession, reason: str, known: list[str]) -> None:
    """UserError (audited without the reason) when the reason holds personal data."""
    kinds = pii_in_text(reason, known)
    if kinds:
        audit.record(spark, "detokenize", status="rejected_pii_in_reason",
                     details={"reason_pii_types": kinds})
        raise UserError(f"--reason holds personal data ({', '.join(kinds)}) and would be stored in the "
                        "audit log: give a reference such as 'DPO request 2026-17' instead; nothing was looked up")


def detokenize(spark: SparkSession, token: str, reason: str) -> Detokenized:
    """The value behind `token`. Raises UserError (after auditing the attempt)
    when the reason holds personal data, the key is not the registered one,
    or the token is malformed or unknown."""
    if not reason.strip():
        raise UserError("a reason is required for every detokenization (--reason)")
    _refuse_personal_reason(spark, reason, _known_ids(spark, id_like_words(reason)))
    try:
        keys.require_registered_key(spark, "record the subject's pseudonym")
    except UserError:
        audit.record(spark, "detokenize", status="rejected_key_mismatch", details={"reason": reason})
        raise
    if not TOKEN_PATTERN.fullmatch(token):
        audit.record(spark, "detokenize", status="rejected_malformed_token",
                     details={"reason": reason})
        raise UserError("not a vault token (expected 'tok_' + 32 lowercase hex characters)")
    if not table_exists(spark, VAULT_TABLE):
        raise UserError(f"{VAULT_TABLE} does not exist: run `make build` first")
    rows = spark.sql(
        f"select token_domain, token_value from {VAULT_TABLE} where token = :token",
        args={"token": token},
    ).collect()
    if not rows:
        audit.record(spark, "detokenize", status="not_found",
                     relations={VAULT_TABLE: 0}, details={"reason": reason})
        raise UserError(f"unknown token {token}: not in {VAULT_TABLE} (erased, or never issued)")
    domain, value = rows[0]
    _refuse_personal_reason(spark, reason, [value])
    subject = _subject_pseudonym(spark, domain, value)
    audit_id = audit.record(
        spark, "detokenize", status="success", subject_pseudonym_id=subject,
        relations={VAULT_TABLE: 1}, details={"reason": reason, "token_domain": domain},
    )
    return Detokenized(token, domain, value, subject, audit_id)
