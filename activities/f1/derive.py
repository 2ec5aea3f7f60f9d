"""Recompute a session's derived metrics (interfaces.md, F1 pipeline): lap metrics, stint
degradation, pit cycles, driver metrics and anomalies, set-based in SQL, merged through
the change log so a failed run's derive is undone with its raw rows.

One transaction per session, serialized per session by an advisory lock: the metrics
of a session always come from one snapshot of its raw rows and one parameter version.
Each table is computed by one query (derive_*.py, anomalies.py) and merged with
`merge_rows`, deleting (logged) the session's rows the computation no longer yields.
The later queries read the earlier tables' rows just merged in the same transaction.
Numeric outputs are rounded, so recomputing unchanged raw data writes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from activities.f1.anomalies import anomaly_rows
from activities.f1.derive_drivers import driver_metrics_rows
from activities.f1.derive_facts import SessionFacts, session_facts
from activities.f1.derive_laps import lap_metrics_rows
from activities.f1.derive_pit_cycles import pit_cycle_rows
from activities.f1.derive_stints import stint_metrics_rows
from activities.f1.derived_tables import (
    ANOMALIES,
    DERIVED_WRITE_ORDER,
    DRIVER_SESSION_METRICS,
    LAP_METRICS,
    PIT_CYCLES,
    STINT_METRICS,
)
from activities.f1.params import MetricParams, active_params
from pipeworks.db import Connection
from pipeworks.merge import MergeCounts, TableSpec, merge_rows

RowsOf = Callable[[Connection, SessionFacts, MetricParams, str],
                  Awaitable[list[tuple[Any, ...]]]]

# The query of each derived table; recompute_session runs them in DERIVED_WRITE_ORDER.
_ROWS_OF: dict[TableSpec, RowsOf] = {
    LAP_METRICS: lap_metrics_rows,
    STINT_METRICS: stint_metrics_rows,
    PIT_CYCLES: pit_cycle_rows,
    DRIVER_SESSION_METRICS: driver_metrics_rows,
    ANOMALIES: anomaly_rows,
}


@dataclass
class DeriveOutcome:
    """What one recompute did: per derived table, how many rows were inserted, updated,
    unchanged and deleted; whether (and why) some rows were computed without a stream
    they need (`completeness` = 'partial' on those rows)."""

    session_key: int
    metric_version: str
    tables: dict[str, MergeCounts] = field(default_factory=dict)
    partial: bool = False
    partial_reasons: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        """Per table: inserted / updated / unchanged / deleted."""
        return {name: c.as_dict() for name, c in self.tables.items()}

    @property
    def changed(self) -> bool:
        return any(c.inserted or c.updated or c.deleted for c in self.tables.values())

    def as_dict(self) -> dict[str, Any]:
        return {"session_key": self.session_key, "metric_version": self.metric_version,
                "tables": self.counts, "partial": self.partial,
                "partial_reasons": list(self.partial_reasons)}


def _partial_reasons(facts: SessionFacts) -> list[str]:
    reasons = []
    if facts.stintless_drivers:
        drivers = ", ".join(str(d) for d in facts.stintless_drivers)
        reasons.append(f"no stints for drivers {drivers}: inferred from pit stops and"
                       " out-laps")
    if facts.race_control_missing:
        reasons.append("no race control messages: neutralised laps inferred from lap times"
                       if facts.is_race else "no race control messages: no neutralised laps")
    return reasons


async def recompute_session(conn: Connection, session_key: int, *, run_id: str,
                            scope: str) -> DeriveOutcome:
    """Recompute every derived row of the session under the active metric version and
    merge them (change-logged under `run_id` / `scope`). Opens its own transaction, or a
    savepoint inside the caller's."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('f1:derive:' || $1::int))",
                           session_key)
        version, params = await active_params(conn)
        facts = await session_facts(conn, session_key)
        reasons = _partial_reasons(facts)
        outcome = DeriveOutcome(session_key=session_key, metric_version=version,
                                partial=bool(reasons), partial_reasons=reasons)
        for spec in DERIVED_WRITE_ORDER:
            async with _hash_and_merge_joins(conn):
                rows = await _ROWS_OF[spec](conn, facts, params, version)
            outcome.tables[spec.name] = await merge_rows(
                conn, spec, rows, run_id=run_id, scope=scope,
                delete_where="t.session_key = $3", delete_args=(session_key,),
                listed_keys=_keys(spec, rows))
    return outcome


@asynccontextmanager
async def _hash_and_merge_joins(conn: Connection) -> AsyncIterator[None]:
    """The derive queries join and aggregate CTEs of a session's thousand-odd laps. On
    tables whose statistics lag (a session just loaded, before autovacuum analyzes), the
    planner takes them for a handful of rows and picks nested loops that re-aggregate a
    CTE per row: seconds instead of milliseconds. Hash and merge joins suit these queries
    at every size, so nested loops are off for them (transaction-local), and back to the
    session's setting before merging: a merge's key lookups are nested loops by design."""
    previous = await conn.fetchval("SELECT current_setting('enable_nestloop')")
    await conn.execute("SELECT set_config('enable_nestloop', 'off', true)")
    yield
    # Not on an error: the transaction (or savepoint) is then rolled back, and the
    # setting with it.
    await conn.execute("SELECT set_config('enable_nestloop', $1, true)", previous)


def _keys(spec: TableSpec, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The rows' keys as merge_rows lists them: tuples in `spec.key` order."""
    at = [spec.columns.index(k) for k in spec.keys]
    return [tuple(row[i] for i in at) for row in rows]
