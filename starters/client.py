"""Starting, attaching to, querying and signalling runs: what every starter does."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle, WorkflowQueryFailedError
from temporalio.common import (
    Priority,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from pipeworks import priorities, registry
from pipeworks.inputs import RunInput
from pipeworks.logging import get_logger
from pipeworks.progress import FINAL_STATUSES
from pipeworks.settings import Settings
from pipeworks.temporal_client import connect_temporal

POLL_SECONDS = 0.5
log = get_logger("pipeworks.starters")


class StarterError(Exception):
    """A problem the user can fix; the CLI prints it as one line (exit 2)."""


@dataclass
class Started:
    handle: WorkflowHandle[Any, Any]
    attached: bool


async def connect(settings: Settings) -> Client:
    return await connect_temporal(settings)


async def start_or_attach(
    client: Client, settings: Settings, workflow: str, workflow_id: str, payload: dict[str, Any],
    *, priority: Priority | None = None,
    attributes: TypedSearchAttributes = TypedSearchAttributes.empty,
) -> Started:
    """On-demand syncs are safe to repeat: a second request joins the running one.

    The server decides atomically: a start that meets an open run with the same id fails
    with that run's id, and this request attaches to it (a closed run is no conflict).
    """
    try:
        handle = await client.start_workflow(
            workflow, payload, id=workflow_id, task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            priority=priority or Priority.default, search_attributes=attributes)
    except WorkflowAlreadyStartedError as running:
        return Started(client.get_workflow_handle(workflow_id, run_id=running.run_id), True)
    except RPCError as err:
        raise StarterError(f"cannot start {workflow} {workflow_id}: {err.message}") from None
    return Started(handle, False)


async def search_attributes_registered(client: Client, namespace: str) -> bool:
    """Whether runs may carry our search attributes: setting an unregistered one fails."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace))
    except RPCError as err:
        log.warning("cannot list search attributes; runs start without them",
                    error=err.message)
        return False
    missing = {key.name for key in registry.search_attribute_keys()} - set(
        listed.custom_attributes)
    if missing:
        log.warning("search attributes not registered in the namespace; runs start without "
                    "them (`pipeworks dev up` registers them; on a cluster: `temporal operator "
                    "search-attribute create`)", missing=sorted(missing), namespace=namespace)
    return not missing


async def start_run(client: Client, settings: Settings, request: RunInput) -> Started:
    payload = request.model_dump(mode="json", exclude_none=True)
    attributes = (TypedSearchAttributes(request.initial_search_attributes())
                  if await search_attributes_registered(client, settings.temporal_namespace)
                  else TypedSearchAttributes.empty)
    priority = priorities.BATCH if request.BATCH else priorities.ON_DEMAND
    return await start_or_attach(client, settings, request.WORKFLOW, request.workflow_id,
                                 payload, priority=priority, attributes=attributes)


async def query_progress(client: Client, workflow_id: str, run_id: str | None = None
                         ) -> dict[str, Any]:
    try:
        result = await client.get_workflow_handle(workflow_id, run_id=run_id).query("progress")
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise StarterError(f"no workflow with id {workflow_id!r}") from None
        raise StarterError(f"cannot query workflow {workflow_id!r}: {err.message}") from None
    except WorkflowQueryFailedError as err:
        raise StarterError(f"workflow {workflow_id!r} failed to answer: {err.message}") from None
    if not isinstance(result, dict):
        raise StarterError(f"workflow {workflow_id!r} answered no progress document")
    return result


async def send_cancel(client: Client, workflow_id: str, reason: str) -> None:
    try:
        await client.get_workflow_handle(workflow_id).signal("cancel", {"reason": reason})
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise StarterError(f"no running workflow with id {workflow_id!r}") from None
        raise StarterError(f"cannot signal workflow {workflow_id!r}: {err.message}") from None


async def follow(client: Client, workflow_id: str,
                 on_update: Callable[[dict[str, Any]], Awaitable[None] | None],
                 run_id: str | None = None) -> dict[str, Any]:
    """Polls `progress` (of `run_id`, else the latest run) until the run ends; returns the
    final document."""
    while True:
        document = await query_progress(client, workflow_id, run_id)
        maybe = on_update(document)
        if maybe is not None:
            await maybe
        if document.get("status") in FINAL_STATUSES:
            return document
        await asyncio.sleep(POLL_SECONDS)


def exit_code_for(document: dict[str, Any]) -> int:
    return 0 if document.get("status") in ("completed", "completed_with_errors") else 1
