"""The worker as a separate process: killed with SIGKILL mid-run, and drained by SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.sports.settings import SportsSettings
from devstack.sports.server import UpstreamServer
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.sports.helpers import assert_tables_equal, expected_association, start_sync
from tests.worker import spawn_worker_process, worker_process_env

pytestmark = pytest.mark.slow


def worker_env(settings: Settings, metrics_port: int | None = None,
               health_port: int | None = None) -> dict[str, str]:
    """A worker process's environment; each gets its own metrics and health ports."""
    sports_api_url = settings.of(SportsSettings).sports_api_url
    assert sports_api_url is not None
    return {**worker_process_env(settings, "sports_sync",
                                 {"PIPEWORKS_SPORTS_API_URL": sports_api_url},
                                 graceful_shutdown_seconds=20, metrics_port=metrics_port,
                                 health_port=health_port),
            "PIPEWORKS_LOG_FORMAT": "json"}


async def spawn_worker(settings: Settings, log: Path) -> asyncio.subprocess.Process:
    return await spawn_worker_process(worker_env(settings), log)


async def wait_for(handle: Any, predicate: Any, timeout: float = 60.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            progress: dict[str, Any] = await handle.query("progress")
            if predicate(progress):
                return progress
        except Exception:  # no worker to answer yet
            pass
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting for progress"
        await asyncio.sleep(0.1)


async def wait_for_landed_games_in_flight(db: Connection, timeout: float = 60.0) -> int:
    """Pages of a games stream landed while its fetch is still running."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        landed = int(await db.fetchval(
            "SELECT count(*) FROM pipeline.landed_pages p JOIN pipeline.loads l USING (load_id)"
            " WHERE l.entity = 'games' AND l.status = 'fetching'"))
        if landed >= 2:
            return landed
        assert asyncio.get_running_loop().time() < deadline, "no games fetch in flight"
        await asyncio.sleep(0.02)


class WorkerProcesses:
    """Workers spawned by one test, all stopped when it ends, however it ends."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self._settings, self._log = settings, log
        self.spawned: list[asyncio.subprocess.Process] = []

    async def spawn(self) -> asyncio.subprocess.Process:
        self.spawned.append(await spawn_worker(self._settings, self._log))
        return self.spawned[-1]

    @property
    def current(self) -> asyncio.subprocess.Process:
        return self.spawned[-1]

    async def kill_current(self) -> None:
        process = self.current
        assert process.returncode is None, f"the worker died by itself:\n{self.log_tail()}"
        process.send_signal(signal.SIGKILL)
        assert await process.wait() == -signal.SIGKILL

    def log_tail(self) -> str:
        return self._log.read_text(errors="replace")[-3000:] if self._log.exists() else ""


@asynccontextmanager
async def worker_processes(settings: Settings, log: Path) -> AsyncIterator[WorkerProcesses]:
    workers = WorkerProcesses(settings, log)
    try:
        yield workers
    finally:
        for process in workers.spawned:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def test_worker_killed_mid_run_and_restarted_finishes_with_exact_data(
    temporal_env: WorkflowEnvironment, settings: Settings, db: Connection,
    upstream: UpstreamServer, tmp_path: Path,
) -> None:
    upstream.faults.set(latency_ms=60)
    async with worker_processes(settings, tmp_path / "worker.log") as workers:
        first = await workers.spawn()
        handle = await start_sync(temporal_env.client, settings, org_kind="association",
                                  org_id="A1", page_size=3, competition_concurrency=2,
                                  heartbeat_timeout_seconds=3)
        landed = await wait_for_landed_games_in_flight(db)
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
        await workers.spawn()
        result = await asyncio.wait_for(handle.result(), timeout=120)
    assert landed > 0, "the kill should have hit a run with pages landed"
    assert result["status"] == "completed", result
    assert result["errors"]["system"] >= 1, result["errors"]
    await assert_tables_equal(db, expected_association(upstream.dataset, "A1"))
    loads = await db.fetch("SELECT status FROM pipeline.loads")
    assert {r["status"] for r in loads} == {"staged"}


async def test_sigterm_drains_in_flight_work_and_exits_zero(
    temporal_env: WorkflowEnvironment, settings: Settings, db: Connection,
    upstream: UpstreamServer, tmp_path: Path,
) -> None:
    upstream.faults.set(latency_ms=60)
    log = tmp_path / "worker.log"
    async with worker_processes(settings, log) as workers:
        first = await workers.spawn()
        handle = await start_sync(temporal_env.client, settings, org_kind="association",
                                  org_id="A1", page_size=3, competition_concurrency=3)
        await wait_for(handle, lambda p: p["stages"][1]["status"] == "running")
        first.send_signal(signal.SIGTERM)
        exit_code = await asyncio.wait_for(first.wait(), timeout=30)
        await workers.spawn()
        result = await asyncio.wait_for(handle.result(), timeout=120)
    text = log.read_text()
    assert exit_code == 0, text[-2000:]
    assert "draining in-flight activities" in text and "worker stopped" in text
    assert result["status"] == "completed"
    # Drained activities completed: none failed or timed out because of the shutdown.
    assert result["errors"] == {"transient": 0, "permanent": 0, "data": 0, "system": 0}
    await assert_tables_equal(db, expected_association(upstream.dataset, "A1"))


async def test_the_api_token_never_reaches_logs_or_history(
    temporal_env: WorkflowEnvironment, settings: Settings, db: Connection,
    upstream: UpstreamServer, tmp_path: Path,
) -> None:
    token = "tok-" + "s3cr3t" * 4
    upstream.token = token
    competition = upstream.dataset.expected_competitions("A1")[-1]["id"]
    upstream.faults.set(path_status={f"/v1/competitions/{competition}/games": 404})
    log = tmp_path / "worker.log"
    env = {"PIPEWORKS_SPORTS_API_TOKEN": token, "PIPEWORKS_LOG_LEVEL": "debug"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "starters.cli", "worker", env={**worker_env(settings), **env},
        stdout=log.open("ab"), stderr=asyncio.subprocess.STDOUT)
    try:
        handle = await start_sync(temporal_env.client, settings, org_kind="association",
                                  org_id="A1")
        progress = await wait_for(handle, lambda p: p["status"] in ("failed", "completed"))
        history = await handle.fetch_history()
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=30)
    assert progress["status"] == "failed"  # authorised: it got as far as the 404
    assert progress["records"]["fetched"] > 0
    text = log.read_text()
    assert "worker started" in text
    assert token not in text
    assert token not in history.to_json()
