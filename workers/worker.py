"""The pipeworks worker: dependencies built once per process and injected into
class-based activities; SIGTERM/SIGINT drain in-flight work and exit 0."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Worker

from activities.alerts import AlertActivities
from activities.runs import RunActivities
from pipeworks import registry
from pipeworks.db import CONNECT_ERRORS, connect, create_pool, migrate, unreachable
from pipeworks.logging import get_logger
from pipeworks.metrics import PipelineMetrics, metrics_runtime
from pipeworks.registry import PipelineResources
from pipeworks.settings import ConfigError, Settings
from pipeworks.temporal_client import connect_temporal
from workers.health import HealthServer, WorkerState
from workers.interceptors import ActivityObserver

KERNEL_METRICS = "pipeworks"
log = get_logger("pipeworks.worker")


def workflows(settings: Settings | None = None) -> list[type]:
    """The workflows of the pipelines this worker serves (all registered, by default)."""
    return [w for pipeline in served(settings) for w in pipeline.workflows]


def served(settings: Settings | None) -> list[registry.Pipeline]:
    """`PIPEWORKS_PIPELINES`, or every registered pipeline."""
    try:
        return registry.selected(settings.pipelines if settings is not None else "")
    except registry.RegistryError as err:
        raise ConfigError(f"PIPEWORKS_PIPELINES: {err}") from None


@dataclass
class WorkerResources:
    pool: asyncpg.Pool
    temporal: Client
    state: WorkerState
    pipelines: PipelineResources
    # The kernel's activities and those of every pipeline this worker serves.
    activities: list[Any] = field(default_factory=list)
    # The activities' pipeline, for metrics recorded around them (retries).
    metrics_by_activity: dict[str, PipelineMetrics] = field(default_factory=dict)


def build_activities(settings: Settings, resources: WorkerResources) -> None:
    meter = runtime_of(resources.temporal).metric_meter
    runs = RunActivities(resources.pool, resources.temporal, undoable=registry.undo_tables(),
                         meter=meter)
    webhook = settings.alert_webhook_url
    alerts = AlertActivities(webhook.get_secret_value() if webhook else None,
                             settings.temporal_ui_url, settings.temporal_namespace)
    resources.activities = [
        alerts.send_run_alert, runs.record_run_started, runs.record_run_finished,
        runs.acquire_lease, runs.release_lease, runs.undo_run_changes, runs.await_workflow]
    for pipeline in served(settings):
        metrics = PipelineMetrics(meter, pipeline.name)
        for activity_function in pipeline.activities(resources.pipelines):
            resources.activities.append(activity_function)
            name = activity_name(activity_function)
            if name:
                resources.metrics_by_activity[name] = metrics


def activity_name(function: Any) -> str | None:
    definition = getattr(function, "__temporal_activity_definition", None)
    return getattr(definition, "name", None)


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


@asynccontextmanager
async def worker_resources(settings: Settings, temporal: Client | None = None
                           ) -> AsyncIterator[WorkerResources]:
    """Pool and Temporal client, opened once, and what the pipelines open with them
    (e.g. their HTTP clients), all closed on exit.

    Metrics go to the runtime of `temporal` (connected here with `worker_runtime`)."""
    dsn = settings.resolved_database_url()
    temporal = temporal or await connect_temporal(settings, worker_runtime(settings))
    try:
        pool = await create_pool(dsn, max_size=settings.db_pool_size)
    except CONNECT_ERRORS as err:
        raise ConfigError(unreachable(dsn, err)) from None
    pipelines = PipelineResources(settings, pool, temporal, runtime_of(temporal).metric_meter)
    try:
        try:
            async with pool.acquire() as conn:
                applied = await migrate(conn)
        except CONNECT_ERRORS as err:  # e.g. a role not allowed to create the schema
            raise ConfigError(unreachable(dsn, err)) from None
        if applied:
            log.info("migrations applied", migrations=applied)
        resources = WorkerResources(pool, temporal, WorkerState(task_queue=settings.task_queue),
                                    pipelines)
        build_activities(settings, resources)  # a pipeline's bad settings stop it here
        yield resources
    finally:
        try:
            for close in reversed(pipelines.closers):
                try:
                    await close()
                except Exception as err:  # the others and the pool are closed all the same
                    log.warning("closing a pipeline's resource failed", error=str(err))
        finally:
            await pool.close()


def build_worker(settings: Settings, resources: WorkerResources, **overrides: Any) -> Worker:
    options: dict[str, Any] = {
        "task_queue": settings.task_queue,
        "workflows": workflows(settings),
        "activities": resources.activities,
        "interceptors": [ActivityObserver(
            resources.state, resources.metrics_by_activity,
            PipelineMetrics(runtime_of(resources.temporal).metric_meter, KERNEL_METRICS))],
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
