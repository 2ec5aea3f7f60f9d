"""A run's progress document for the API: its `progress` query, else, when no worker
answers, what `pipeline.runs` recorded when the run ended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.client import Client, WorkflowHandle, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from pipeworks.progress import FINAL_STATUSES

QUERY_TIMEOUT = timedelta(seconds=5)

_RECORDED = """
    SELECT run_id, status, stats FROM pipeline.runs WHERE workflow_id = $1
    ORDER BY started_at DESC, run_id DESC LIMIT 1
"""


class RunNotFound(Exception):
    pass


@dataclass
class Answer:
    document: dict[str, Any] | None
    # Why there is no live document (the run is open but no worker answered).
    unavailable: str | None = None


async def recorded(pool: asyncpg.Pool, workflow_id: str) -> dict[str, Any] | None:
    """The final document a run stored in `pipeline.runs` (None while it runs)."""
    row = await pool.fetchrow(_RECORDED, workflow_id)
    if row is None or row["stats"] is None:
        return None
    document = dict(row["stats"])  # the pool decodes jsonb
    if row["status"] == "rolled_back":  # undone later by a cancelled batch
        document["rolled_back"] = True
    return document


_TEMPORAL_ENDS = {
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED: ("failed", "terminated"),
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TIMED_OUT: ("failed", "timed out"),
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_FAILED: ("failed", "failed"),
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CANCELED: ("cancelled", "cancelled"),
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED: ("completed", "completed"),
}


async def _closed_by_temporal(handle: WorkflowHandle[Any, Any], pool: asyncpg.Pool,
                              document: dict[str, Any]) -> dict[str, Any] | None:
    try:
        described = await handle.describe(rpc_timeout=QUERY_TIMEOUT)
    except RPCError:
        return None
    ended = _TEMPORAL_ENDS.get(described.raw_description.workflow_execution_info.status)
    if ended is None:
        return None
    stored = await recorded(pool, handle.id)
    if stored is not None and stored.get("status") in FINAL_STATUSES:
        return stored
    status, how = ended
    return {**document, "status": status,
            "message": f"{how} in Temporal before the run recorded an end"}


async def progress_of(client: Client, pool: asyncpg.Pool, workflow_id: str) -> Answer:
    handle = client.get_workflow_handle(workflow_id)
    try:
        result = await handle.query("progress", rpc_timeout=QUERY_TIMEOUT)
        if isinstance(result, dict):
            if result.get("status") in FINAL_STATUSES:
                return Answer(result)
            # A run Temporal ended without it (terminated, timed out) still answers with
            # its last document, which says running: Temporal's word is final.
            return Answer(await _closed_by_temporal(handle, pool, result) or result)
        problem = "the run answered no progress document"
    except WorkflowQueryFailedError as err:
        problem = f"the run failed to answer: {err.message}"
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            stored = await recorded(pool, workflow_id)
            if stored is None:
                raise RunNotFound(workflow_id) from None
            return Answer(stored)  # gone from Temporal (retention), kept by us
        problem = f"no worker answered: {err.message}"
    # The query failed: a closed run's answer is what it recorded; an open run's worker
    # is away (restarting, or none polls the task queue).
    try:
        described = await handle.describe(rpc_timeout=QUERY_TIMEOUT)
    except RPCError as err:
        return Answer(None, f"{problem}; describe failed: {err.message}")
    if described.raw_description.workflow_execution_info.status != (
            WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING):
        stored = await recorded(pool, workflow_id)
        if stored is not None:
            return Answer(stored)
    return Answer(None, problem)
