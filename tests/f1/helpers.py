"""What the F1 pipeline's tests share: starting runs, the upstream's rows as the tables
should hold them, snapshots of every `f1` table."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from temporalio.client import Client, WorkflowHandle

from devstack.f1 import F1UpstreamServer
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.run_results import failure_of as failure_of  # re-exported
from tests.table_snapshots import checksums as table_checksums
from tests.table_snapshots import xmins as table_xmins

# Every table a run writes (stream state and quality checks are an audit trail: kept).
F1_TABLES = ("f1.meetings", "f1.sessions", "f1.drivers", "f1.laps", "f1.stints",
             "f1.pit_stops", "f1.weather", "f1.race_control", "f1.positions",
             "f1.intervals", "f1.overtakes", "f1.session_results", "f1.starting_grid",
             "f1.lap_metrics", "f1.stint_metrics", "f1.pit_cycles",
             "f1.driver_session_metrics", "f1.anomalies")


async def start(client: Client, settings: Settings, workflow: str, params: dict[str, Any],
                workflow_id: str | None = None) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        workflow, params, id=workflow_id or f"test-{workflow}-{uuid.uuid4().hex[:8]}",
        task_queue=settings.task_queue)


async def sync_session(client: Client, settings: Settings, session_key: int,
                       mode: str = "full") -> dict[str, Any]:
    handle = await start(client, settings, "F1SessionSyncWorkflow",
                         {"session_key": session_key, "mode": mode},
                         f"f1-session-{session_key}")
    result: dict[str, Any] = await handle.result()
    return result


async def checksums(db: Connection) -> dict[str, str]:
    return await table_checksums(db, F1_TABLES)


async def xmins(db: Connection) -> dict[str, list[str]]:
    """Every row's xmin per table: unchanged means not written at all."""
    return await table_xmins(db, F1_TABLES)


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def upstream_laps(upstream: F1UpstreamServer, session_key: int
                  ) -> set[tuple[int, int, float | None, datetime | None]]:
    return {(i["driver_number"], i["lap_number"], i.get("lap_duration"),
             _moment(i.get("date_start")))
            for i in upstream.dataset.items("laps", session_key)}


async def stored_laps(db: Connection, session_key: int
                      ) -> set[tuple[int, int, float | None, datetime | None]]:
    rows = await db.fetch("SELECT driver_number, lap_number, lap_duration, date_start"
                          " FROM f1.laps WHERE session_key = $1", session_key)
    return {tuple(r) for r in rows}  # type: ignore[misc]
