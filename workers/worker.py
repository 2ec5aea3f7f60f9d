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
from urllib.parse import urlsplit

import asyncpg
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Worker

from activities.alerts import AlertActivities
from activities.runs import RunActivities
from activities.sports.activities import PIPELINE as SPORTS_PIPELINE
from activities.sports.activities import SportsActivities
from activities.sports.stagers import UNDO_ORDER
from pipeworks.db import CONNECT_ERRORS, connect, create_pool, migrate, unreachable
from pipeworks.http import UpstreamClient
from pipeworks.logging import get_logger
from pipeworks.metrics import PipelineMetrics, metrics_runtime
from pipeworks.rate_limit import SharedRateLimit
from pipeworks.settings import ConfigError, Settings
from pipeworks.temporal_client import connect_temporal
from workers.health import HealthServer, WorkerState
from workers.interceptors import ActivityObserver
from workflows.account_sync import AccountSyncWorkflow
from workflows.batch_sync import BatchSyncWorkflow
from workflows.competitions import CompetitionsSyncWorkflow

WORKFLOWS: Sequence[type] = (AccountSyncWorkflow, BatchSyncWorkflow, CompetitionsSyncWorkflow)
log = get_logger("pipeworks.worker")


@dataclass
class WorkerResources:
    pool: asyncpg.Pool
    upstream: UpstreamClient
    temporal: Client
    metrics: PipelineMetrics
    state: WorkerState

    def activities(self, settings: Settings) -> list[Any]:
        runs = RunActivities(self.pool, self.temporal, undoable=UNDO_ORDER,
                             meter=runtime_of(self.temporal).metric_meter)
        sports = SportsActivities(self.pool, self.upstream, metrics=self.metrics,
                                  keep_landed_pages=settings.keep_landed_pages)
        webhook = settings.alert_webhook_url
        alerts = AlertActivities(webhook.get_secret_value() if webhook else None,
                                 settings.temporal_ui_url,
                                 settings.temporal_namespace)
        return [alerts.send_run_alert,
            runs.record_run_started, runs.record_run_finished, runs.acquire_org_lease,
            runs.release_org_lease, runs.undo_run_changes, runs.await_workflow,
            sports.lookup_account, sports.list_accounts, sports.resolve_org,
            sports.fetch_stream, sports.stage_stream, sports.sync_streams,
        ]


def runtime_of(client: Client) -> Runtime:
    return client.service_client.config.runtime or Runtime.default()


def worker_runtime(settings: Settings) -> Runtime | None:
    """The SDK runtime whose Prometheus exporter serves this worker's metrics."""
    if not settings.metrics_address:
        return None
    try:
        return metrics_runtime(settings.metrics_address)
    except ValueError as err:  # e.g. the port is taken by another worker on this host
        raise ConfigError(f"PIPEWORKS_METRICS_ADDRESS={settings.metrics_address}: {err}"
                          ) from None


def shared_rate_limit(settings: Settings, pool: asyncpg.Pool) -> SharedRateLimit | None:
    if settings.upstream_rate_limit is None:
        return None
    url = urlsplit(settings.resolved_sports_api_url())
    # Host and port only: credentials in the URL must not end up in a table.
    return SharedRateLimit(pool, f"upstream:{url.hostname}:{url.port or url.scheme}",
                           settings.upstream_rate_limit)


@asynccontextmanager
async def worker_resources(settings: Settings, temporal: Client | None = None
                           ) -> AsyncIterator[WorkerResources]:
    """Pool, HTTP client and Temporal client, opened once and closed on exit.

    Metrics go to the runtime of `temporal` (connected here with `worker_runtime`)."""
    dsn = settings.resolved_database_url()
    temporal = temporal or await connect_temporal(settings, worker_runtime(settings))
    metrics = PipelineMetrics(runtime_of(temporal).metric_meter, SPORTS_PIPELINE)
    try:
        pool = await create_pool(dsn, max_size=settings.db_pool_size)
    except CONNECT_ERRORS as err:
        raise ConfigError(unreachable(dsn, err)) from None
    upstream = UpstreamClient(
        settings.resolved_sports_api_url(),
        token=settings.sports_api_token.get_secret_value() if settings.sports_api_token else None,
        timeout_seconds=settings.http_timeout_seconds, max_attempts=settings.http_max_attempts,
        max_connections=settings.max_concurrent_activities * 2, metrics=metrics,
        rate_limit=shared_rate_limit(settings, pool))
    try:
        try:
            async with pool.acquire() as conn:
                applied = await migrate(conn)
        except CONNECT_ERRORS as err:  # e.g. a role not allowed to create the schema
            raise ConfigError(unreachable(dsn, err)) from None
        if applied:
            log.info("migrations applied", migrations=applied)
        yield WorkerResources(pool, upstream, temporal, metrics,
                              WorkerState(task_queue=settings.task_queue))
    finally:
        await upstream.aclose()
        await pool.close()


def build_worker(settings: Settings, resources: WorkerResources, **overrides: Any) -> Worker:
    options: dict[str, Any] = {
        "task_queue": settings.task_queue,
        "workflows": list(WORKFLOWS),
        "activities": resources.activities(settings),
        "interceptors": [ActivityObserver(resources.state, resources.metrics)],
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
    async with worker_resources(settings) as resources, health_server(settings, resources):
        worker = build_worker(settings, resources)
        log.info("worker started", task_queue=settings.task_queue,
                 temporal=settings.temporal_address, namespace=settings.temporal_namespace,
                 metrics=settings.metrics_address or "off",
                 health=settings.health_address or "off")
        running = asyncio.create_task(worker.run())
        resources.state.started = True
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({running, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            log.info("shutting down: draining in-flight activities",
                     timeout_seconds=settings.graceful_shutdown_seconds)
            resources.state.draining = True
            await worker.shutdown()
        else:
            stopped.cancel()
        try:
            await running
        except Exception as err:
            resources.state.failure = f"{type(err).__name__}: {err}"
            raise
    log.info("worker stopped")


@asynccontextmanager
async def health_server(settings: Settings, resources: WorkerResources
                        ) -> AsyncIterator[HealthServer | None]:
    if not settings.health_address:
        yield None
        return

    async def temporal_answers() -> object:
        return await resources.temporal.service_client.check_health()

    async def postgres_answers() -> object:
        # Its own connection: a busy worker's pool may be all taken by stage transactions,
        # which says nothing about whether Postgres answers.
        conn = await connect(settings.resolved_database_url())
        try:
            return await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    server = HealthServer(settings.health_address, resources.state,
                          {"temporal": temporal_answers, "postgres": postgres_answers})
    try:
        await server.start()
    except OSError as err:
        raise ConfigError(f"PIPEWORKS_HEALTH_ADDRESS={settings.health_address}: {err}"
                          ) from None
    try:
        yield server
    finally:
        await server.close()
