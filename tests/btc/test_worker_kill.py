"""A reconciliation whose worker process is SIGKILLed twice mid-walk and restarted: the
same findings as an undisturbed run, and every height reconciled exactly once."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.btc.settings import BtcSettings
from devstack.btc import BtcNodeServer
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.btc.helpers import ingest, open_findings, start
from tests.btc.test_faults import PLANTED, plant
from tests.worker import (
    killed_at_exit,
    running_worker,
    spawn_worker_process,
    worker_process_env,
)

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]


def worker_env(settings: Settings) -> dict[str, str]:
    btc = settings.of(BtcSettings)
    assert btc.btc_rpc_url is not None and btc.btc_rpc_password is not None
    return worker_process_env(settings, "btc_reconcile", {
        "PIPEWORKS_BTC_RPC_URL": btc.btc_rpc_url,
        "PIPEWORKS_BTC_RPC_USER": str(btc.btc_rpc_user),
        "PIPEWORKS_BTC_RPC_PASSWORD": btc.btc_rpc_password.get_secret_value(),
        "PIPEWORKS_BTC_MIN_CONFIRMATIONS": "0"})


async def test_a_worker_killed_twice_mid_walk_finds_the_same(
        btc_settings: Settings, temporal_env: WorkflowEnvironment, btc_node: BtcNodeServer,
        db: Connection, tmp_path: Path) -> None:
    client = temporal_env.client
    async with running_worker(btc_settings, client):
        await ingest(client, btc_settings)
    await plant(db)
    btc_node.faults.set(latency_ms=15)  # a walk of some seconds
    log = tmp_path / "worker.log"
    async with killed_at_exit() as spawned:
        spawned.append(await spawn_worker_process(worker_env(btc_settings), log))
        handle = await start(client, btc_settings, "BtcReconcileWorkflow", {
            "from_height": 0, "batch": {"initial": 10, "min": 5, "max": 10},
            "max_concurrent_batches": 2, "checkpoint_every_batches": 8,
            "heartbeat_timeout_seconds": 2})
        for kill_at in (60, 200):
            for _ in range(1500):
                done = await db.fetchval("SELECT coalesce(max(hi), -1) FROM btc.recon_batches"
                                         " WHERE outcome = 'ok'")
                if done >= kill_at:
                    break
                assert spawned[-1].returncode is None, log.read_text()[-3000:]
                await asyncio.sleep(0.02)
            spawned[-1].send_signal(signal.SIGKILL)
            assert await spawned[-1].wait() == -signal.SIGKILL
            spawned.append(await spawn_worker_process(worker_env(btc_settings), log))
        result = await asyncio.wait_for(handle.result(), timeout=240)
    assert result["status"] == "completed", result
    assert await open_findings(db) == set(PLANTED)
    batches = await db.fetch("SELECT lo, hi FROM btc.recon_batches WHERE outcome = 'ok'"
                             " ORDER BY lo")
    covered = [h for b in batches for h in range(b["lo"], b["hi"] + 1)]
    assert covered == list(range(439))  # every height exactly once
    assert await db.fetchval("SELECT count(*) FROM btc.discrepancies") == len(PLANTED)
