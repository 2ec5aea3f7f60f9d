"""The pipeworks worker: dependencies built once per process and injected into
class-based activities; SIGTERM/SIGINT drain in-flight work and exit 0."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.worker import Worker

from activities.runs import RunActivities
from activities.sports.activities import SportsActivities
from activities.sports.stagers import UNDO_ORDER
from pipeworks.db import CONNECT_ERRORS, create_pool, migrate, unreachable
from pipeworks.http import UpstreamClient
from pipeworks.logging import get_logger
from pipeworks.settings import ConfigError, Settings
from pipeworks.temporal_client import connect_temporal
from workflows.account_sync import AccountSyncWorkflow
from workflows.batch_sync import BatchSyncWorkflow

WORKFLOWS: Sequence[type] = (AccountSyncWorkflow, BatchSyncWorkflow)
log = get_logger("pipeworks.worker")


@dataclass
class WorkerResources:
    pool: asyncpg.Pool
    upstream: UpstreamClient
    temporal: Client

    def activities(self, settings: Settings) -> list[Any]:
        runs = RunActivities(self.pool, self.temporal, undoable=UNDO_ORDER)
        sports = SportsActivities(self.pool, self.upstream,
                                  keep_landed_pages=settings.keep_landed_pages)
        return [
            runs.record_run_started, runs.record_run_finished, runs.acquire_org_lease,
            runs.release_org_lease, runs.undo_run_changes, runs.await_workflow,
            sports.lookup_account, sports.list_accounts, sports.resolve_org,
            sports.fetch_stream, sports.stage_stream,
        ]


@asynccontextmanager
async def worker_resources(settings: Settings, temporal: Client | None = None
                           ) -> AsyncIterator[WorkerResources]:
    """Pool, HTTP client and Temporal client, opened once and closed on exit."""
    dsn = settings.resolved_database_url()
    try:
        pool = await create_pool(dsn, max_size=settings.db_pool_size)
    except CONNECT_ERRORS as err:
        raise ConfigError(unreachable(dsn, err)) from None
    upstream = UpstreamClient(
        settings.resolved_sports_api_url(),
        token=settings.sports_api_token.get_secret_value() if settings.sports_api_token else None,
        timeout_seconds=settings.http_timeout_seconds, max_attempts=settings.http_max_attempts,
        max_connections=settings.max_concurrent_activities * 2)
    try:
        try:
            async with pool.acquire() as conn:
                applied = await migrate(conn)
        except CONNECT_ERRORS as err:  # e.g. a role not allowed to create the schema
            raise ConfigError(unreachable(dsn, err)) from None
        if applied:
            log.info("migrations applied", migrations=applied)
        yield WorkerResources(pool, upstream, temporal or await connect_temporal(settings))
    finally:
        await upstream.aclose()
        await pool.close()


def build_worker(settings: Settings, resources: WorkerResources, **overrides: Any) -> Worker:
    options: dict[str, Any] = {
        "task_queue": settings.task_queue,
        "workflows": list(WORKFLOWS),
        "activities": resources.activities(settings),
        "max_concurrent_activities": settings.max_concurrent_activities,
        # The SDK's default of 0 would cancel in-flight activities at once.
        "graceful_shutdown_timeout": timedelta(seconds=settings.graceful_shutdown_seconds),
    }
    options.update(overrides)
    return Worker(resources.temporal, **options)


async def run_worker(settings: Settings) -> None:
    """Runs until SIGTERM/SIGINT, then drains within the graceful-shutdown timeout."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with worker_resources(settings) as resources:
        worker = build_worker(settings, resources)
        log.info("worker started", task_queue=settings.task_queue,
                 temporal=settings.temporal_address, namespace=settings.temporal_namespace)
        running = asyncio.create_task(worker.run())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({running, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            log.info("shutting down: draining in-flight activities",
                     timeout_seconds=settings.graceful_shutdown_seconds)
            await worker.shutdown()
        else:
            stopped.cancel()
        await running
    log.info("worker stopped")
