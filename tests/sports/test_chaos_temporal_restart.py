"""The Temporal server goes away in the middle of a run and comes back: first stopped
(SIGTERM), later crashed (SIGKILL). It is a TemporalDevServer from devstack/temporal.py
with its SQLite file, so the run's state outlives the process, as in `pipeworks dev up`.
While it is away the worker keeps working (pages land, activities finish into the
void); when it is back, the same run resumes and ends with the upstream's exact rows."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import WorkflowHandle

from devstack.processes import free_port
from devstack.sports.faults import FaultConfig
from devstack.sports.server import UpstreamServer
from devstack.temporal import TemporalDevServer
from pipeworks import registry, search_attributes
from pipeworks.db import Connection
from pipeworks.settings import Settings
from pipeworks.temporal_client import connect_temporal
from tests.sports.helpers import (
    assert_tables_equal_counted,
    chaos_tally,
    expected_association,
    start_sync,
    write_chaos_tallies,
)
from tests.worker import running_worker

pytestmark = pytest.mark.slow

HEARTBEAT_TIMEOUT = 1.0
FAULT = "Temporal dev server stopped, later crashed, and restarted mid-run (SQLite state)"


@pytest_asyncio.fixture(scope="module", loop_scope="session", autouse=True)
async def _report_counts() -> AsyncIterator[None]:
    yield
    write_chaos_tallies()


@pytest_asyncio.fixture(loop_scope="session")
async def temporal_server(tmp_path: Path) -> AsyncIterator[TemporalDevServer]:
    server = TemporalDevServer(tmp_path / "temporal", port=free_port(), ui_port=free_port(),
                               search_attributes=search_attributes.registration(
                                   registry.search_attribute_keys()))
    try:
        await asyncio.to_thread(server.start)
        yield server
    finally:
        await asyncio.to_thread(server.stop)


async def until(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def outage(server: TemporalDevServer, upstream: UpstreamServer, db: Connection, *,
                 after: int, crash: bool) -> None:
    """Hold the run after `after` more upstream requests, take Temporal away, let the
    worker work on without it, then bring Temporal back."""
    upstream.faults.set(FaultConfig(hold_after=after))

    async def held() -> bool:
        return upstream.faults.held > 0

    await until(held, f"the run to make {after} more requests")
    if crash:
        pid = server.running_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await asyncio.to_thread(server.stop)  # reaps it and removes the pid file
    else:
        assert await asyncio.to_thread(server.stop)
    assert not server.is_running()
    served = upstream.stats.total
    upstream.faults.clear()  # the run goes on, with no Temporal to report to

    async def worked_without_temporal() -> bool:
        return upstream.stats.total > served

    await until(worked_without_temporal, "the worker to go on while Temporal is away")

    async def nothing_fetching() -> bool:
        return not await db.fetchval(
            "SELECT count(*) FROM pipeline.loads WHERE status = 'fetching'")

    await until(nothing_fetching, "the fetches in flight to land without Temporal")
    # Away for longer than the activities' heartbeat timeout: when Temporal is back, its
    # timers for them have fired, and what the worker reports may meet a retry.
    await asyncio.sleep(HEARTBEAT_TIMEOUT + 0.5)
    await asyncio.to_thread(server.start)


async def test_a_temporal_restart_and_a_temporal_crash_mid_run_resume_the_same_run(
    temporal_server: TemporalDevServer, settings: Settings, db: Connection,
    upstream: UpstreamServer,
) -> None:
    ours = settings.model_copy(update={"temporal_address": temporal_server.address})
    client = await connect_temporal(ours)
    handle: WorkflowHandle[Any, Any]
    async with running_worker(ours, client):
        handle = await start_sync(client, ours, org_kind="association", org_id="A1",
                                  page_size=3, competition_concurrency=2,
                                  heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT)
        run_id = handle.result_run_id
        await outage(temporal_server, upstream, db, after=8, crash=False)
        await outage(temporal_server, upstream, db, after=10, crash=True)
        result = await asyncio.wait_for(handle.result(), timeout=120)
    tally = chaos_tally(FAULT)
    tally.faults += 2
    tally.runs += 1
    assert temporal_server.db_path.stat().st_size > 0
    assert result["status"] == "completed", result
    described = await client.get_workflow_handle(handle.id).describe()
    assert described.run_id == run_id  # resumed, not started again
    await assert_tables_equal_counted(db, expected_association(upstream.dataset, "A1"),
                                      fault=FAULT)
    runs = await db.fetch("SELECT run_id, status FROM pipeline.runs")
    assert [(r["run_id"], r["status"]) for r in runs] == [(run_id, "completed")]
    loads = await db.fetch("SELECT status FROM pipeline.loads")
    assert {r["status"] for r in loads} == {"staged"}
