"""The marts as the endpoints need them: scoped to a tenant, checked for the
columns the API relies on, and rendered to JSON once per mart version."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sflux.api import views
from sflux.api.errors import ApiError
from sflux.api.settings import CELLS_TABLE, DAILY_TABLE, MATRIX_TABLE, TENANT_COLUMN, TENANT_TABLES, TIERS_TABLE
from sflux.api.snapshot import LruCache, MartUnavailable, NotTenantScoped, Snapshot, SnapshotReader, TenantLeak

REQUIRED_COLUMNS = {
    TIERS_TABLE: {"subscription_type", "tier_rank"},
    MATRIX_TABLE: {"city"},
    CELLS_TABLE: {"city", "subscription_type", "is_suppressed", *views.MATRIX_MEASURES},
    DAILY_TABLE: {"city", "reading_date", "subscription_type", "is_suppressed", *views.TREND_MEASURES},
}


def render(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


class MartService:
    def __init__(self, reader: SnapshotReader, cache_size: int = 1024) -> None:
        self.reader = reader
        self._rendered = LruCache(cache_size)
        self._indexes = LruCache(cache_size)

    def snapshot(self, table: str, tenant: str | None, tenant_token: bool = False) -> Snapshot:
        """A consistent snapshot of `table`, or only `tenant`'s rows of its
        tenant-scoped counterpart. The reference seed (tiers) is not
        per-tenant: it names tiers, nobody's data."""
        scoped = tenant is not None and table in TENANT_TABLES
        name = TENANT_TABLES[table] if scoped else table
        try:
            snap = self.reader.read(name, tenant if scoped else None)
        except MartUnavailable as exc:
            raise ApiError(503, str(exc)) from None
        except NotTenantScoped:
            message = (
                f"no tenant-scoped marts in this build: analytics.{name} has no tenant_id column, "
                "so no data can be served for a tenant"
            )
            raise ApiError(403 if tenant_token else 404, message) from None
        except TenantLeak as exc:
            raise ApiError(503, f"refused: tenant isolation check failed ({exc}); nothing was served") from None
        if not scoped and TENANT_COLUMN in snap.table.column_names:
            # One row per tenant x city x tier: serving it as the all-member
            # mart would overwrite cells with one tenant's numbers.
            raise ApiError(
                503,
                f"analytics.{name} has a {TENANT_COLUMN} column, so it is not an all-member mart: "
                "point the all-member table names in sflux/api/settings.py at tables without it",
            )
        if scoped and not tenant_token and snap.table.num_rows == 0:
            # An internal persona naming a tenant the marts do not hold gets
            # a 404, not an empty answer that reads like "no data yet". A
            # tenant token always gets its own view, empty or not.
            raise ApiError(404, f"unknown tenant: analytics.{name} has no row for it")
        missing = REQUIRED_COLUMNS[table] - set(snap.table.column_names)
        if missing and snap.table.num_rows:
            raise ApiError(503, f"analytics.{name} lacks column(s) {sorted(missing)}: rebuild the marts")
        return snap

    def tiers(self) -> tuple[Snapshot, list[str]]:
        snap = self.snapshot(TIERS_TABLE, None)
        return snap, self._indexes.get_or_make(("tiers", snap.version), lambda: views.tier_names(snap.table))

    def daily_index(self, tenant: str | None, tenant_token: bool) -> tuple[Snapshot, views.DailyIndex]:
        snap = self.snapshot(DAILY_TABLE, tenant, tenant_token)
        key = ("daily", snap.version)
        return snap, self._indexes.get_or_make(key, lambda: views.DailyIndex.of(snap.table))

    def matrix_json(self, tenant: str | None, tenant_token: bool) -> bytes:
        tiers_snap, tiers = self.tiers()
        matrix = self.snapshot(MATRIX_TABLE, tenant, tenant_token)
        cells = self.snapshot(CELLS_TABLE, tenant, tenant_token)
        key = ("matrix", tenant, tiers_snap.version, matrix.version, cells.version)
        return self._rendered.get_or_make(
            key, lambda: render(views.matrix_payload(tiers, matrix.table, cells.table, tenant))
        )

    def time_range_json(self, tenant: str | None, tenant_token: bool) -> bytes:
        snap, index = self.daily_index(tenant, tenant_token)
        key = ("time_range", tenant, snap.version)
        return self._rendered.get_or_make(key, lambda: render(views.time_range_payload(index, tenant)))

    def trend_json(
        self,
        tenant: str | None,
        tenant_token: bool,
        city: str,
        start: date | None,
        end: date | None,
        tier: str | None,
    ) -> bytes:
        tiers_snap, tiers = self.tiers()
        resolved_tier = views.resolve_tier(tier, tiers)
        snap, index = self.daily_index(tenant, tenant_token)
        resolved_city = views.resolve_city(city, list(index.by_city))
        key = ("trend", tenant, resolved_city, start, end, resolved_tier, tiers_snap.version, snap.version)
        return self._rendered.get_or_make(
            key,
            lambda: render(views.trend_payload(index, tiers, resolved_city, start, end, resolved_tier, tenant)),
        )
