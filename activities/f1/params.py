"""The derived metrics' parameters, versioned in `f1.metric_params` (interfaces.md, F1
pipeline, Definitions). Exactly one version is active; every derived row records the
version it was computed under, so rolling a metric change back is activating the
previous version and recomputing."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pipeworks.db import Connection

DEFAULT_VERSION = "v1"
DEFAULT_NOTE = "interfaces.md v2 defaults"
# Serializes activate/add_version against each other (one active version at a time).
_LOCK = "f1:metric_params"


class MetricParams(BaseModel):
    """The v1 defaults. A stored version holds every field (`add_version` writes them
    all), so a later change of a default here never changes what an old version means."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Fuel model: fuel_kg(n) = max(fuel_start_kg - fuel_start_kg / L * (n - 0.5), 0).
    fuel_start_kg: float = Field(default=110.0, ge=0)
    fuel_s_per_kg: float = Field(default=0.03, ge=0)
    # A lap is slow (not valid for pace) above pace_window x its stint's median.
    pace_window: float = Field(default=1.07, gt=1)
    min_degradation_laps: int = Field(default=5, ge=2)
    pit_cycle_max_lap_gap: int = Field(default=3, ge=1)
    pit_cycle_max_gap_s: float = Field(default=3.0, ge=0)
    pit_loss_window_laps: int = Field(default=5, ge=1)
    # "Overlaps a period by more than an instant": a lap counts when its overlap with a
    # period is longer than this (strictly); 0, any positive overlap, while half-open
    # intervals that merely touch (a lap starting the instant a period ends) do not.
    neutralised_min_overlap_s: float = Field(default=0.0, ge=0)
    # Without race control: a lap number is neutralised ('SC') when more than
    # inferred_sc_share of the drivers timed on it (at least inferred_sc_min_drivers) are
    # slower than inferred_sc_ratio x their own median lap.
    inferred_sc_ratio: float = Field(default=1.25, gt=1)
    inferred_sc_share: float = Field(default=0.5, ge=0, lt=1)
    inferred_sc_min_drivers: int = Field(default=3, ge=1)
    # Anomalies.
    z_score_threshold: float = Field(default=3.5, gt=0)
    z_score_min_laps: int = Field(default=5, ge=3)
    position_jump: int = Field(default=3, ge=1)
    pit_lane_tukey_k: float = Field(default=1.5, gt=0)
    pit_lane_min_stops: int = Field(default=4, ge=4)
    max_degradation_s_per_lap: float = 0.5
    min_degradation_s_per_lap: float = -0.2
    weather_step_track_c: float = Field(default=5.0, gt=0)
    weather_step_air_c: float = Field(default=3.0, gt=0)


async def active_params(conn: Connection) -> tuple[str, MetricParams]:
    """The active version and its parameters. With no active version (a new database
    whose rows were removed, a test that emptied the table), v1 is created with the
    defaults, race-safe: concurrent callers all end up reading the one row written."""
    row = await conn.fetchrow("SELECT version, params FROM f1.metric_params WHERE active")
    if row is None:
        # No conflict target: a concurrent insert of v1 (primary key) or of any active
        # version (the partial unique index) both mean someone else did it.
        await conn.execute(
            "INSERT INTO f1.metric_params (version, params, active, note)"
            " VALUES ($1, $2::text::jsonb, true, $3) ON CONFLICT DO NOTHING",
            DEFAULT_VERSION, MetricParams().model_dump_json(), DEFAULT_NOTE)
        row = await conn.fetchrow("SELECT version, params FROM f1.metric_params WHERE active")
        if row is None:  # v1 exists but was deactivated, and nothing else is active
            await activate(conn, DEFAULT_VERSION)
            row = await conn.fetchrow(
                "SELECT version, params FROM f1.metric_params WHERE active")
    assert row is not None
    return row["version"], MetricParams.model_validate(_as_dict(row["params"]))


async def add_version(conn: Connection, version: str, params: MetricParams, note: str,
                      *, make_active: bool = False) -> bool:
    """Store a new parameter version (inactive unless `make_active`). Idempotent for the
    same parameters; a version is immutable, so different parameters under an existing
    name raise ValueError. Returns whether the version was created."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", _LOCK)
        created = await conn.fetchval(
            "INSERT INTO f1.metric_params (version, params, active, note)"
            " VALUES ($1, $2::text::jsonb, false, $3) ON CONFLICT (version) DO NOTHING"
            " RETURNING true", version, params.model_dump_json(), note)
        if not created:
            stored = await conn.fetchval(
                "SELECT params FROM f1.metric_params WHERE version = $1", version)
            if MetricParams.model_validate(_as_dict(stored)) != params:
                raise ValueError(f"metric version {version!r} exists with other parameters")
        if make_active:
            await activate(conn, version)
    return bool(created)


async def activate(conn: Connection, version: str) -> None:
    """Make `version` the one active version (raises LookupError when unknown). Derived
    rows change only when sessions are recomputed."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", _LOCK)
        known = await conn.fetchval(
            "SELECT true FROM f1.metric_params WHERE version = $1", version)
        if not known:
            raise LookupError(f"no metric version {version!r}")
        # Deactivate first: the partial unique index allows one active row at any time.
        await conn.execute(
            "UPDATE f1.metric_params SET active = false WHERE active AND version <> $1", version)
        await conn.execute(
            "UPDATE f1.metric_params SET active = true WHERE version = $1 AND NOT active",
            version)


def _as_dict(value: Any) -> dict[str, Any]:
    """jsonb as the connection decodes it: a dict with the project's codec, else text."""
    if isinstance(value, dict):
        return value
    decoded = json.loads(value)
    assert isinstance(decoded, dict)
    return decoded
