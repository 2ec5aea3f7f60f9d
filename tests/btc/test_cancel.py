"""Cancelling: an ingest cancelled mid-way is undone exactly (every table as before);
a reconciliation cancelled mid-walk keeps the findings of the heights it finished
(findings are append-only) and nothing else changes."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devstack.btc import BtcNodeServer
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.btc.helpers import checksums, failure_of, ingest, open_findings, start

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_cancelled_ingest_is_undone(
        btc_worker: Worker, btc_settings: Settings, temporal_env: WorkflowEnvironment,
        btc_node: BtcNodeServer, db: Connection) -> None:
    client = temporal_env.client
    await ingest(client, btc_settings, to_height=99)
    before = await checksums(db)
    btc_node.faults.set(latency_ms=40)
    handle = await start(client, btc_settings, "BtcIngestWorkflow",
                         {"from_height": 50, "batch_heights": 20})
    for _ in range(400):
        progress = await handle.query("progress")
        if progress["stages"][1]["done"] >= 40:
            break
        await asyncio.sleep(0.05)
    await handle.cancel()  # Temporal's own cancel, as the Web UI's button
    await failure_of(handle)
    progress = await handle.query("progress")
    assert progress["status"] == "cancelled" and progress["rolled_back"], progress
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    assert await checksums(db) == before


async def test_a_cancelled_reconciliation_keeps_what_it_found(
        btc_worker: Worker, btc_settings: Settings, temporal_env: WorkflowEnvironment,
        btc_node: BtcNodeServer, db: Connection) -> None:
    client = temporal_env.client
    await ingest(client, btc_settings)
    for height in (20, 400):
        await db.execute("UPDATE btc.block_calcs SET total_out_sat = total_out_sat + 1"
                         " WHERE height = $1", height)
    before = await checksums(db)
    btc_node.faults.set(latency_ms=30)
    handle = await start(client, btc_settings, "BtcReconcileWorkflow", {
        "from_height": 0, "batch": {"initial": 10, "min": 5, "max": 10},
        "max_concurrent_batches": 1})
    for _ in range(600):
        if ((await handle.query("progress")).get("cursor_height") or -1) >= 100:
            break
        await asyncio.sleep(0.05)
    await handle.signal("cancel", {"reason": "test"})
    await failure_of(handle)
    progress = await handle.query("progress")
    assert progress["status"] == "cancelled", progress
    assert 100 <= progress["cursor_height"] < 400
    # The finding of a finished height stays; the one past the cursor was never seen.
    assert await open_findings(db) == {(20, "value_mismatch", "total_out_sat")}
    assert await checksums(db) == before
