"""Activities every pipeline shares: the run record, leases, compensation."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import MetricMeter
from temporalio.service import RPCError, RPCStatusCode

from pipeworks import leases
from pipeworks.activity_errors import categorized_errors
from pipeworks.errors import PermanentError, SystemFailure, as_application_error, failure_message
from pipeworks.heartbeat import Heartbeater
from pipeworks.landing import mark_compensated
from pipeworks.merge import TableSpec, undo_changes
from pipeworks.metrics import PipelineMetrics

LEASE_POLL_SECONDS = 1.0


@dataclass
class RunStarted:
    workflow_id: str
    run_id: str
    pipeline: str
    params: dict[str, Any]


@dataclass
class RunFinished:
    run_id: str
    status: str
    stats: dict[str, Any]


@dataclass
class LeaseRequest:
    key: str                               # what the run must write alone, e.g. "x:A1"
    workflow_id: str
    run_id: str


@dataclass
class UndoRequest:
    run_id: str
    tables: list[str]                      # schema-qualified, in the order to undo
    scope: str | None = None               # None: everything the run changed
    reason: str = ""


@dataclass
class UndoResult:
    restored: dict[str, int] = field(default_factory=dict)


class RunActivities:
    def __init__(self, pool: asyncpg.Pool, temporal: Client | None = None,
                 undoable: Sequence[TableSpec] = (), meter: MetricMeter | None = None) -> None:
        self._pool = pool
        self._temporal = temporal
        self._meter = meter or MetricMeter.noop
        self._metrics: dict[str, PipelineMetrics] = {}
        # Table names reach SQL as identifiers: only those of known pipelines may.
        self._undoable = {spec.name: spec for spec in undoable}

    @activity.defn(name="record_run_started")
    async def record_run_started(self, run: RunStarted) -> None:
        with categorized_errors():
            await self._pool.execute(
                """
                INSERT INTO pipeline.runs
                    (workflow_id, run_id, pipeline, params, status, started_at)
                VALUES ($1, $2, $3, $4, 'running', now())
                ON CONFLICT (run_id) DO NOTHING
                """,
                run.workflow_id, run.run_id, run.pipeline, run.params)

    @activity.defn(name="record_run_finished")
    async def record_run_finished(self, run: RunFinished) -> None:
        with categorized_errors():
            # A retried attempt finds the run finished already and does not count it twice.
            first_time = await self._pool.fetchval(
                """
                WITH before AS (
                    SELECT run_id, finished_at IS NULL AS open FROM pipeline.runs
                    WHERE run_id = $1 FOR UPDATE)
                UPDATE pipeline.runs r SET status = $2, stats = $3, finished_at = now()
                FROM before WHERE r.run_id = before.run_id
                RETURNING before.open
                """,
                run.run_id, run.status, run.stats)
        if first_time:
            self._pipeline_metrics(str(run.stats.get("pipeline", ""))).run_finished(run.status)

    def _pipeline_metrics(self, pipeline: str) -> PipelineMetrics:
        if pipeline not in self._metrics:
            self._metrics[pipeline] = PipelineMetrics(self._meter, pipeline)
        return self._metrics[pipeline]

    @activity.defn(name="acquire_lease")
    async def acquire_lease(self, request: LeaseRequest) -> None:
        """Waits (heartbeating) while another live run holds the lease."""
        async with Heartbeater({"waiting_for": None}) as heartbeater:
            while True:
                with categorized_errors():
                    async with self._pool.acquire() as conn:
                        acquired, holder_wf, holder_run = await leases.try_acquire(
                            conn, request.key, request.workflow_id, request.run_id)
                        if acquired:
                            return
                        assert holder_wf is not None and holder_run is not None
                        # An earlier run of this workflow id (one this run continued
                        # from, or one that ended without releasing): not running, as
                        # only one run of an id runs at a time. Handed over at once.
                        if holder_wf == request.workflow_id and await leases.take_over(
                                conn, request.key, holder_run, request.workflow_id,
                                request.run_id):
                            return
                        if not await self._is_running(holder_wf, holder_run):
                            activity.logger.warning(
                                "taking over the lease of %s from %s, which no longer runs",
                                request.key, holder_wf)
                            if await leases.take_over(conn, request.key, holder_run,
                                                      request.workflow_id, request.run_id):
                                return
                heartbeater.record({"waiting_for": holder_wf})
                await asyncio.sleep(LEASE_POLL_SECONDS)

    async def _is_running(self, workflow_id: str, run_id: str) -> bool:
        if self._temporal is None:
            return True
        status = await self._status(workflow_id, run_id)
        if status == WorkflowExecutionStatus.CONTINUED_AS_NEW:
            # The chain holds the lease into its next run, which takes it over.
            status = await self._status(workflow_id, None)
        return status == WorkflowExecutionStatus.RUNNING

    async def _status(self, workflow_id: str, run_id: str | None
                      ) -> WorkflowExecutionStatus | None:
        assert self._temporal is not None
        try:
            described = await self._temporal.get_workflow_handle(
                workflow_id, run_id=run_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            # Temporal unreachable is no evidence the holder stopped: retry later.
            raise SystemFailure(f"cannot check lease holder {workflow_id}: {err}") from None
        return described.status

    @activity.defn(name="release_lease")
    async def release_lease(self, request: LeaseRequest) -> None:
        with categorized_errors():
            async with self._pool.acquire() as conn:
                await leases.release(conn, request.key, request.run_id)

    @activity.defn(name="await_workflow")
    async def await_workflow(self, workflow_id: str) -> dict[str, Any]:
        """Attach to a run started elsewhere and return its result."""
        if self._temporal is None:
            raise as_application_error(SystemFailure("no Temporal client in this worker"))
        async with Heartbeater({"attached_to": workflow_id}):
            try:
                result = await self._temporal.get_workflow_handle(workflow_id).result()
            except WorkflowFailureError as err:
                cause = err.cause if err.cause is not None else err
                raise as_application_error(PermanentError(
                    f"{workflow_id} ended badly: {failure_message(cause)}")) from None
        return result if isinstance(result, dict) else {}

    @activity.defn(name="undo_run_changes")
    async def undo_run_changes(self, request: UndoRequest) -> UndoResult:
        unknown = [name for name in request.tables if name not in self._undoable]
        if unknown:
            raise as_application_error(PermanentError(f"cannot undo unknown tables {unknown}"))
        specs = [self._undoable[name] for name in request.tables]
        with categorized_errors():
            async with Heartbeater(), self._pool.acquire() as conn, conn.transaction():
                await mark_compensated(conn, request.run_id, request.scope)
                restored = await undo_changes(conn, specs, run_id=request.run_id,
                                              scope=request.scope)
                if request.scope is None:
                    # A finished run undone later (by a cancelled batch) says so.
                    await conn.execute(
                        "UPDATE pipeline.runs SET status = 'rolled_back' WHERE run_id = $1"
                        " AND status IN ('completed', 'completed_with_errors')",
                        request.run_id)
        activity.logger.info("undid changes of run %s (scope %s, because %s): %s",
                             request.run_id, request.scope or "all", request.reason, restored)
        return UndoResult(restored)
