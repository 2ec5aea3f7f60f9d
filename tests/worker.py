"""An in-process worker with the production wiring, for any pipeline's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

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
