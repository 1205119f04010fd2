"""Response shapes, for the OpenAPI document at /docs. The endpoints send
pre-rendered JSON of exactly these shapes (rendering once per mart version
is what keeps the matrix fast under load); tests check the shapes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

State = Literal["published", "suppressed", "no_data"]


class ErrorBody(BaseModel):
    error: str = Field(description="One line saying what is wrong and what to change.")


class MatrixCell(BaseModel):
    tier: str
    state: State
    suppressed: bool = Field(description="True when fewer than min_cell_users people are behind the cell.")
    n_users: int | None = Field(description="Distinct members behind the cell; null unless published.")
    n_readings: int | None
    avg_heart_rate: float | None = Field(description="Mean heart rate in bpm, unrounded; null unless published.")


class MatrixRow(BaseModel):
    city: str
    cells: list[MatrixCell] = Field(description="One per tier, in tier-rank order; never missing.")


class MatrixResponse(BaseModel):
    tenant: str | None = Field(description="The tenant the rows belong to; null for all members.")
    tiers: list[str]
    cities: list[MatrixRow]


class TrendDay(BaseModel):
    date: str
    tier: str
    state: State
    suppressed: bool
    n_users: int | None
    n_readings: int | None
    avg_heart_rate: float | None
    p50_heart_rate: float | None
    p90_heart_rate: float | None


class TrendResponse(BaseModel):
    tenant: str | None
    city: str
    tier: str | None = Field(description="The tier asked for; null for every tier.")
    from_: str | None = Field(alias="from")
    to: str | None
    data_first_date: str | None
    data_last_date: str | None
    days: list[TrendDay] = Field(description="Every date x tier of the period that the data covers.")


class TimeRangeResponse(BaseModel):
    tenant: str | None
    first_date: str | None
    last_date: str | None
    n_days: int


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    marts: dict[str, str]
