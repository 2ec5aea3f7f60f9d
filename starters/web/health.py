"""The dashboard's health: each worker's `/readyz`, the task queue's pollers as
Temporal sees them, and Postgres."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.service import RPCError

from starters.web.state import ServerState

PROBE_SECONDS = 2.0


async def _readyz(client: httpx.AsyncClient, address: str) -> dict[str, Any]:
    url = f"http://{address}/readyz"
    try:
        response = await client.get(url)
        document = response.json()
    except (httpx.HTTPError, ValueError) as err:
        return {"address": address, "state": "unreachable", "ready": False,
                "detail": f"{type(err).__name__} at {url}"}
    if not isinstance(document, dict):
        return {"address": address, "state": "unknown", "ready": False,
                "detail": "not a health document"}
    return {"address": address, **document}


async def _pollers(state: ServerState) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for kind, label in ((TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, "workflow"),
                        (TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY, "activity")):
        described = await state.temporal.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(namespace=state.settings.temporal_namespace,
                                     task_queue=TaskQueue(name=state.settings.task_queue),
                                     task_queue_type=kind))
        for poller in described.pollers:
            entry = found.setdefault(poller.identity, {"identity": poller.identity,
                                                       "polls": [], "last_access": None})
            entry["polls"].append(label)
            seen = poller.last_access_time.ToDatetime(tzinfo=UTC)
            entry["last_access"] = max(filter(None, [entry["last_access"], seen]))
    return sorted(found.values(), key=lambda p: str(p["identity"]))


async def health(state: ServerState) -> dict[str, Any]:
    addresses = state.web.worker_health_addresses(state.settings.health_address)
    async with httpx.AsyncClient(timeout=PROBE_SECONDS) as client:
        workers = await asyncio.gather(*(_readyz(client, a) for a in addresses))
    try:
        pollers: list[dict[str, Any]] | str = await _pollers(state)
    except RPCError as err:
        pollers = f"Temporal did not answer: {err.message}"
    try:
        await state.pool.fetchval("SELECT 1")
        database = "ok"
    except Exception as err:
        database = f"{type(err).__name__}: {err}"
    return {"checked_at": datetime.now(UTC).isoformat(), "workers": list(workers),
            "task_queue": state.settings.task_queue, "pollers": pollers,
            "database": database}
