"""A cancel signal that arrives together with an activity's completion (both in the
same workflow task) must still stop the run and roll it back. It once did not: the run
ended `completed` with whole stages skipped (the SDK delivers signals before activity
results in a workflow task; Temporal's own cancel comes after them and always worked).

Made deterministic here: workflows and activities run on separate workers, and the
workflow worker is away while the activity completes and the signal arrives, so the
next workflow task carries both. In production the same happens whenever the signal
lands in the window between an activity's completion and the workflow task that
handles it.

Cause: `cancel_signal` cancels the `_work` task while it awaits an activity. The SDK's
activity handle traps that CancelledError to request the activity's cancellation, and
when the activity has already completed it returns the result instead: the task's
cancellation is consumed. Fix: `PipelineWorkflow.stop_if_cancel_requested`, checked
around every activity and when the work ends (behind `workflow.patched("cancel-race")`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devstack.sports.faults import FaultConfig
from devstack.sports.server import UpstreamServer
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.sports.helpers import (
    assert_restored_counted,
    chaos_tally,
    checksums,
    expected_association,
    failure_of,
    restore_snapshot,
    sports_snapshot,
    start_sync,
    write_chaos_tallies,
)
from tests.sports.test_chaos_upgrades import RECORDING, save
from workers.worker import build_worker, worker_resources, workflows

FAULT = "cancel arriving in the same workflow task as an activity's result"


@asynccontextmanager
async def workflow_worker(client: Client, settings: Settings) -> AsyncIterator[Worker]:
    # No cache, hence no sticky queue: the next workflow task goes to whichever
    # workflow worker polls the task queue, without a sticky timeout first.
    worker = Worker(client, task_queue=settings.task_queue, workflows=workflows(),
                    max_cached_workflows=0,
                    graceful_shutdown_timeout=timedelta(seconds=5))
    async with worker:
        yield worker


async def wait_for_event(handle: WorkflowHandle[Any, Any], event_type: int,
                         count: int = 1) -> None:
    deadline = asyncio.get_running_loop().time() + 30
    while sum(e.event_type == event_type for e in (await handle.fetch_history()).events) < count:
        assert asyncio.get_running_loop().time() < deadline, f"no event {event_type}"
        await asyncio.sleep(0.05)


# Temporal's own cancel is delivered after the activity's result in that workflow task,
# so it reaches the next activity and works; our cancel signal is delivered first.
@pytest.mark.parametrize("how", ["signal", "temporal"])
async def test_a_cancel_arriving_with_an_activity_completion_still_rolls_back(
    temporal_env: WorkflowEnvironment, settings: Settings, db: Connection,
    upstream: UpstreamServer, how: str,
) -> None:
    client = temporal_env.client
    # A1 as the upstream has it, but with older competition names: the run has changes
    # to make (and, cancelled, to undo).
    await restore_snapshot(db, expected_association(upstream.dataset, "A1"))
    await db.execute("UPDATE sports.competitions SET name = name || ' (as it was)'")
    rows_before, sums_before = await sports_snapshot(db), await checksums(db)
    upstream.faults.set(FaultConfig(hold_after=1))  # the organisation; then wait
    async with worker_resources(settings, client) as resources:
        activities = build_worker(settings, resources, workflows=[])
        async with activities:
            async with workflow_worker(client, settings):
                handle = await start_sync(client, settings, org_kind="association",
                                          org_id="A1", page_size=3)
                deadline = asyncio.get_running_loop().time() + 30
                while upstream.faults.held == 0:  # the competitions fetch is in flight
                    assert asyncio.get_running_loop().time() < deadline
                    await asyncio.sleep(0.02)
            # No workflow worker now: the fetch completes, then the signal arrives.
            upstream.faults.clear()
            await wait_for_event(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, 4)
            if how == "signal":
                await handle.signal("cancel", {"reason": "arrives with the fetch's result"})
            else:
                await handle.cancel()
            tally = chaos_tally(f"{FAULT} ({how})")
            tally.faults += 1
            tally.runs += 1
            async with workflow_worker(client, settings):
                cause = await failure_of(handle)
                progress = await handle.query("progress")
    if how == "signal":
        assert isinstance(cause, ApplicationError) and cause.type == "Cancelled", cause
    else:
        assert isinstance(cause, CancelledError), cause
    assert progress["status"] == "cancelled" and progress["rolled_back"] is True
    await assert_restored_counted(db, rows_before, sums_before, fault=f"{FAULT} ({how})")
    if RECORDING:  # the `cancel-race` patch's own path, for the replay check
        save(f"account_sync_v4_cancel_race_{how}.json", handle.id,
             await handle.fetch_history())


@pytest.fixture(scope="module", autouse=True)
def _report_counts() -> Any:
    yield
    write_chaos_tallies()
