"""A season sync whose worker process is SIGKILLed mid-season (twice) and restarted: the
run finishes with exactly the upstream's rows, every load staged once. Also the
upstream's 30 requests per 10 s hold across two workers, through the shared limit."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.f1.settings import F1Settings
from devstack.f1 import F1FaultConfig, F1UpstreamServer
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.f1.conftest import f1_settings_for
from tests.f1.conftest_upstream import BAHRAIN_MEETING, BAHRAIN_QUALIFYING, BAHRAIN_RACE
from tests.f1.helpers import start, stored_laps, upstream_laps
from tests.worker import (
    killed_at_exit,
    running_worker,
    spawn_worker_process,
    worker_process_env,
)

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]


def worker_env(settings: Settings) -> dict[str, str]:
    f1 = settings.of(F1Settings)
    assert f1.f1_api_url is not None
    return worker_process_env(settings, "f1", {
        "PIPEWORKS_F1_API_URL": f1.f1_api_url,
        "PIPEWORKS_F1_RATE_LIMIT": str(f1.f1_rate_limit),
        "PIPEWORKS_F1_RETRY_AFTER_SECONDS": "1"})


async def spawn(settings: Settings, log: Path) -> asyncio.subprocess.Process:
    return await spawn_worker_process(worker_env(settings), log)


async def staged_loads(db: Connection) -> int:
    return int(await db.fetchval("SELECT count(*) FROM pipeline.loads WHERE status = 'staged'"
                                 " AND entity NOT IN ('sessions', 'meetings')"))


async def test_a_worker_killed_mid_season_leaves_exact_data(
        f1_settings: Settings, temporal_env: WorkflowEnvironment,
        f1_upstream: F1UpstreamServer, db: Connection, tmp_path: Path) -> None:
    f1_upstream.faults.set(F1FaultConfig(latency_ms=80))
    log = tmp_path / "worker.log"
    async with killed_at_exit() as spawned:
        spawned.append(await spawn(f1_settings, log))
        handle = await start(temporal_env.client, f1_settings, "F1SeasonSyncWorkflow", {
            "year": 2024, "meeting_keys": [BAHRAIN_MEETING],
            "session_names": ["Qualifying", "Race"], "mode": "full",
            "max_concurrent_sessions": 1}, "f1-season-2024")
        for kill_after in (3, 14):
            # Kill when some streams are staged and others are in flight.
            for _ in range(600):
                if await staged_loads(db) >= kill_after:
                    break
                assert spawned[-1].returncode is None, log.read_text()[-3000:]
                await asyncio.sleep(0.02)
            spawned[-1].send_signal(signal.SIGKILL)
            assert await spawned[-1].wait() == -signal.SIGKILL
            spawned.append(await spawn(f1_settings, log))
        result = await asyncio.wait_for(handle.result(), timeout=240)
    assert result["status"] == "completed", result
    for session_key in (BAHRAIN_QUALIFYING, BAHRAIN_RACE):
        assert await stored_laps(db, session_key) == upstream_laps(f1_upstream, session_key)
    assert await db.fetchval("SELECT count(*) FROM f1.positions WHERE session_key = $1",
                             BAHRAIN_RACE) == len(f1_upstream.dataset.items("position",
                                                                              BAHRAIN_RACE))
    # Every load staged once, and every change logged once per row.
    assert await db.fetchval("SELECT count(*) FROM pipeline.loads WHERE status <> 'staged'"
                             " AND entity NOT IN ('sessions', 'meetings')") == 0
    assert await db.fetchval("SELECT count(*) FROM pipeline.dead_letters") == 0
    # The derived metrics are there and current.
    assert await db.fetchval("SELECT count(*) FROM f1.lap_metrics WHERE session_key = $1",
                             BAHRAIN_RACE) == len(upstream_laps(f1_upstream, BAHRAIN_RACE))


async def test_two_workers_keep_to_30_requests_per_10_seconds(
        kernel_settings: Settings, temporal_env: WorkflowEnvironment,
        f1_upstream: F1UpstreamServer, db: Connection, tmp_path: Path) -> None:
    # The upstream enforces the contract's limit (429 past 30 per 10 s); both workers
    # (this process and another) share the client's default limit through Postgres.
    f1_upstream.faults.set(F1FaultConfig(rate_limit=True))
    settings = f1_settings_for(kernel_settings, f1_upstream.url,
                               f1_rate_limit=F1Settings.model_fields["f1_rate_limit"].default)
    log = tmp_path / "worker.log"
    async with killed_at_exit() as spawned, \
            running_worker(settings, temporal_env.client):
        spawned.append(await spawn(settings, log))
        handle = await start(temporal_env.client, settings, "F1SeasonSyncWorkflow", {
            "year": 2024, "meeting_keys": [BAHRAIN_MEETING],
            "session_names": ["Practice 1", "Practice 2", "Practice 3", "Qualifying", "Race"],
            "mode": "full",
            "max_concurrent_sessions": 3}, "f1-season-2024")
        result = await handle.result()
    assert result["status"] == "completed", result
    stats = f1_upstream.stats.snapshot(log=False)
    assert stats["total"] >= 30
    assert stats["peak_requests_per_window"] <= 30, stats
    assert stats["by_status"].get("429", 0) == 0, stats["by_status"]
