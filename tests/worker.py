"""An in-process worker with the production wiring, for any pipeline's tests."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from devstack.processes import free_port
from pipeworks.settings import Settings
from workers.worker import build_worker, worker_resources


@asynccontextmanager
async def running_worker(settings: Settings, client: Client, **overrides: Any
                         ) -> AsyncIterator[Worker]:
    """An in-process worker polling `settings.task_queue`, with every registered
    pipeline's workflows and activities."""
    async with worker_resources(settings, client) as resources:
        worker = build_worker(settings, resources, **overrides)
        async with worker:
            yield worker


def worker_process_env(settings: Settings, pipelines: str, upstream: Mapping[str, str], *,
                       graceful_shutdown_seconds: int = 5, metrics_port: int | None = None,
                       health_port: int | None = None) -> dict[str, str]:
    """The environment of a `pipeworks worker` process serving `pipelines`, with the
    pipeline's upstream settings; each process gets its own metrics and health ports."""
    assert settings.database_url is not None
    return {
        **os.environ,
        **upstream,
        "PIPEWORKS_DATABASE_URL": settings.database_url.get_secret_value(),
        "PIPEWORKS_PIPELINES": pipelines,
        "PIPEWORKS_TEMPORAL_ADDRESS": settings.temporal_address,
        "PIPEWORKS_TASK_QUEUE": settings.task_queue,
        "PIPEWORKS_HOME": str(settings.home),
        "PIPEWORKS_GRACEFUL_SHUTDOWN_SECONDS": str(graceful_shutdown_seconds),
        "PIPEWORKS_METRICS_ADDRESS": f"127.0.0.1:{metrics_port or free_port()}",
        "PIPEWORKS_HEALTH_ADDRESS": f"127.0.0.1:{health_port or free_port()}",
    }


async def spawn_worker_process(env: Mapping[str, str], log: Path
                               ) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "starters.cli", "worker", env=dict(env),
        stdout=log.open("ab"), stderr=asyncio.subprocess.STDOUT)


@asynccontextmanager
async def killed_at_exit() -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """Worker processes a test appends; any still running at the end is killed."""
    spawned: list[asyncio.subprocess.Process] = []
    try:
        yield spawned
    finally:
        for process in spawned:
            if process.returncode is None:
                process.kill()
                await process.wait()
