"""An on-demand sync goes ahead of batch work already waiting in the same task queue."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from devstack.sports.server import UpstreamServer
from pipeworks import priorities
from pipeworks.db import Connection
from pipeworks.settings import Settings
from starters.client import start_or_attach, start_run
from tests.sports.helpers import run_options
from tests.worker import running_worker
from workflows.sports.inputs import AccountSyncInput


async def test_an_on_demand_sync_overtakes_a_waiting_backlog_of_batch_work(
    temporal_env: WorkflowEnvironment, settings: Settings, db: Connection,
    upstream: UpstreamServer,
) -> None:
    client = temporal_env.client
    clubs = sorted(c for c, club in upstream.dataset.clubs.items()
                   if club.association_id == "A2")[:5]
    # Batch-priority runs queue up while no worker is polling...
    batch = []
    for club in clubs:
        started = await start_or_attach(
            client, settings, "AccountSyncWorkflow",
            f"sports-sync-club-{club}-{settings.task_queue}",
            {**run_options(settings), "org_kind": "club", "org_id": club},
            priority=priorities.BATCH)
        batch.append(started.handle)
    # ...then a person asks for one association, the way `pipeworks sync` does.
    on_demand = (await start_run(client, settings, AccountSyncInput.model_validate(
        {**run_options(settings), "org_kind": "association", "org_id": "A1"}))).handle
    # One workflow task at a time and no sticky queue, so that the order in which the
    # task queue hands out the runs' first tasks shows. Enough activity slots for the runs
    # waiting on the A2 lease not to starve its holder.
    async with running_worker(settings, client, max_concurrent_workflow_tasks=1,
                              max_cached_workflows=0, max_concurrent_activities=8):
        results = await asyncio.wait_for(
            asyncio.gather(on_demand.result(), *(h.result() for h in batch)), 120)
    assert all(r["status"] == "completed" for r in results)
    first_task = {h.id: await first_workflow_task_started(h) for h in (on_demand, *batch)}
    assert min(first_task, key=lambda k: first_task[k]) == on_demand.id, first_task


async def first_workflow_task_started(handle: WorkflowHandle[Any, Any]) -> datetime:
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            return event.event_time.ToDatetime()
    raise AssertionError(f"{handle.id} never started a workflow task")
