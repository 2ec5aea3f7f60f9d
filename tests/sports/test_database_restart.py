"""Postgres restarted in the middle of a run: activities fail as system errors,
Temporal retries them, and the run converges to exact data."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devstack.postgres import EmbeddedPostgres
from devstack.sports.server import UpstreamServer
from pipeworks.db import Connection, connect
from pipeworks.settings import Settings
from tests.sports.helpers import assert_tables_equal, expected_association, start_sync

pytestmark = pytest.mark.slow


async def test_a_postgres_restart_mid_run_is_retried_and_converges(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer, postgres: EmbeddedPostgres,
) -> None:
    upstream.faults.set(latency_ms=40)
    handle = await start_sync(temporal_env.client, settings, org_kind="association",
                              org_id="A1", page_size=3, competition_concurrency=2)
    deadline = asyncio.get_running_loop().time() + 60
    while (await handle.query("progress"))["stages"][1]["done"] < 1:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    await asyncio.to_thread(postgres.stop)
    await asyncio.sleep(1.0)  # activities hit a database that is not there
    await asyncio.to_thread(postgres.start)
    result = await asyncio.wait_for(handle.result(), timeout=120)
    assert result["status"] == "completed", result
    assert result["errors"]["system"] >= 1, result["errors"]
    fresh = await connect(postgres.dsn)  # the fixture's connection died with the server
    try:
        await assert_tables_equal(fresh, expected_association(upstream.dataset, "A1"))
    finally:
        await fresh.close()
