"""A node under trouble: 503 storms and a warm-up change nothing in what is found; an
outage longer than the retry budget opens the circuit breaker (no request reaches the
node while it is open), a probe closes it, and the findings are the same."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devstack.btc import BtcNodeServer
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.btc.helpers import ingest, open_findings, reconcile, start

pytestmark = pytest.mark.asyncio(loop_scope="session")

PLANTED = {
    (330, "count_mismatch", "output_count"):
        "UPDATE btc.block_calcs SET output_count = output_count + 1 WHERE height = 330",
    (340, "value_mismatch", "total_out_sat"):
        "UPDATE btc.block_calcs SET total_out_sat = total_out_sat + 1 WHERE height = 340",
}
SMALL_BATCHES = {"initial": 20, "min": 5, "max": 20, "target_seconds": 20}


async def plant(db: Connection) -> None:
    for sql in PLANTED.values():
        await db.execute(sql)


async def test_503_storms_and_a_warm_up_find_the_same(
        btc_worker: Worker, btc_settings: Settings, temporal_env: WorkflowEnvironment,
        btc_node: BtcNodeServer, db: Connection) -> None:
    await ingest(temporal_env.client, btc_settings)
    await plant(db)
    btc_node.faults.set(work_queue_rate=0.2)
    btc_node.warm_up(seconds=2)
    result = await reconcile(temporal_env.client, btc_settings, batch=SMALL_BATCHES)
    assert await open_findings(db) == set(PLANTED)
    assert result["errors"]["transient"] > 0, result["errors"]
    assert result["supply"]["ok"] is not None  # the supply check was made
    # Every height was reconciled once, whatever was retried.
    batches = await db.fetch("SELECT lo, hi FROM btc.recon_batches WHERE outcome = 'ok'"
                             " ORDER BY lo")
    assert [h for b in batches for h in range(b["lo"], b["hi"] + 1)] == list(range(439))


async def test_an_outage_opens_the_breaker_and_nothing_is_sent_while_open(
        btc_worker: Worker, btc_settings: Settings, temporal_env: WorkflowEnvironment,
        btc_node: BtcNodeServer, db: Connection) -> None:
    client = temporal_env.client
    await ingest(client, btc_settings)
    await plant(db)
    # Slow enough that the outage begins mid-walk: 20 heights take a while.
    btc_node.faults.set(latency_ms=30)
    handle = await start(client, btc_settings, "BtcReconcileWorkflow", {
        "from_height": 0, "batch": SMALL_BATCHES, "max_concurrent_batches": 1,
        "breaker": {"window": 4, "min_calls": 2, "failure_rate": 0.5, "open_seconds": 3,
                    "max_open_seconds": 6}})
    for _ in range(400):
        progress = await handle.query("progress")
        if (progress.get("cursor_height") or -1) >= 40:
            break
        await asyncio.sleep(0.05)
    # Down longer than a batch's retry budget (2 attempts, each retried in the client).
    btc_node.outage(seconds=12, mode="reset")
    states = set()
    for _ in range(600):
        progress = await handle.query("progress")
        states.add(progress["breaker"]["state"])
        if progress["status"] != "running":
            break
        await asyncio.sleep(0.05)
    result = await handle.result()
    assert result["status"] == "completed", result
    assert {"open", "closed"} <= states, states
    assert result["breaker"]["times_opened"] >= 1 and result["breaker"]["state"] == "closed"
    assert await open_findings(db) == set(PLANTED)
    # While the breaker was open (its durable timers), no request reached the node.
    history = await handle.fetch_history()
    opened = [(e.event_time.ToDatetime().timestamp(),
               e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta())
              for e in history.events
              if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED]
    assert opened, "the breaker never waited"
    log = btc_node.stats.log()
    for began, length in opened:
        quiet = [r for r in log
                 if began + 0.2 <= r["wall"] <= began + length.total_seconds() - 0.2]
        assert quiet == [], (began, length, quiet[:3])
    # Open for `open_seconds` (3), then twice as long after a failed probe.
    assert all(length >= timedelta(seconds=2.9) for _, length in opened)
