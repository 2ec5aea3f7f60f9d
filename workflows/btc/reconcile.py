"""BtcReconcileWorkflow: our figures against the node's, height by height.

The range is walked in keyset batches of heights (one activity each) through a sliding
window of at most `max_concurrent_batches`. A batch's size adapts to its measured cost
(workflows/btc/sizing.py). The cursor advances only over the contiguous prefix of
finished batches, so a checkpoint never skips a height; a failed batch is queued again
at the (halved) size, and `btc.recon_batches` holds one committed batch per height and
run. Batches go through the kernel's circuit breaker on the node: while it is open no
batch goes out (a durable timer), then one probe batch decides. The run continues as
new every `checkpoint_every_batches` batches (or when Temporal suggests it), carrying
cursor, sizer, breaker and totals, and ends with the supply check.

Findings are append-only (interfaces.md): a failed or cancelled run keeps those of the
heights it finished, and there is nothing to undo."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.btc import PIPELINE
    from activities.btc.activities import (
        BtcActivities,
        RangePlan,
        RangeRequest,
        ReconBatch,
        ReconResult,
        SupplyRequest,
    )
    from activities.btc.search_attributes import BTC_BREAKER, BTC_NETWORK
    from pipeworks.breaker import BreakerPolicy, BreakerState, CircuitBreaker
    from pipeworks.errors import NON_RETRYABLE_ERROR_TYPES, ErrorCategory, category_of
    from pipeworks.progress import RunProgress, counted
    from workflows.base import PipelineWorkflow
    from workflows.breaker import BreakerGuard
    from workflows.btc.inputs import BtcReconcileInput
    from workflows.btc.sizing import BatchSizer
    from workflows.checkpoint import Checkpoint, continue_with, restore, should_continue

STAGES = ["plan", "reconcile", "supply"]
NODE = "node"
PLAN_TIMEOUT = timedelta(minutes=2)
BATCH_TIMEOUT = timedelta(minutes=10)
# A full `gettxoutsetinfo` scan takes minutes on mainnet.
SUPPLY_TIMEOUT = timedelta(minutes=30)
# Few attempts: a node that stays down is the breaker's to wait out, on a timer, not
# the activity's retries'.
BATCH_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                          maximum_interval=timedelta(seconds=10), maximum_attempts=2,
                          non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES)
# Times one range may fail (each after its activity's retries) before the run fails.
MAX_RANGE_FAILURES = 8
BREAKER_BUDGET_SECONDS = 7 * 24 * 3600.0


_BREAKER_LEVEL = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


def _is_breaker_failure(err: BaseException) -> bool:
    return category_of(err) in (ErrorCategory.TRANSIENT, ErrorCategory.SYSTEM)


@workflow.defn(name="BtcReconcileWorkflow")
class BtcReconcileWorkflow(PipelineWorkflow):
    @workflow.init
    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__()
        self._range: tuple[int, int] | None = None
        self._sizer: BatchSizer | None = None
        self._totals: dict[str, Any] = {"batches": 0, "heights": 0, "weight": 0,
                                        "new_errors": 0, "resolved": 0}
        self._findings: dict[str, int] = {}
        self._guard = BreakerGuard(publish=self._breaker_changed)
        restored = restore(params, self._read_state)
        self._bad_checkpoint = restored.error
        self._checkpoint = restored.checkpoint
        self.progress = restored.progress or RunProgress.new(
            workflow.info().workflow_id, PIPELINE, STAGES, workflow.now())
        self._next: int | None = (int(self._checkpoint.cursor)
                                  if self._checkpoint.cursor is not None else None)
        self._prefix = self._next
        self._done: dict[int, int] = {}  # finished batches beyond the prefix: lo -> hi
        self._retry: list[tuple[int, int]] = []  # failed ranges, to go again
        self._failures: dict[int, int] = {}  # failures per range start
        self._heartbeat = timedelta(seconds=30)

    def _read_state(self, checkpoint: Checkpoint) -> None:
        state = checkpoint.state
        self.chain_run_id = str(state["chain_run_id"])
        self._range = (int(state["lo"]), int(state["hi"]))
        self._sizer = BatchSizer.from_dict(dict(state["sizer"]))
        self._totals.update(state.get("totals", {}))
        self._findings = dict(state.get("findings", {}))

    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, Any]:
        request = self.validated(BtcReconcileInput, params)
        if self._bad_checkpoint is not None:
            raise self.fail_invalid_input(self._bad_checkpoint)
        policy = BreakerPolicy(
            window=request.breaker.window, min_calls=request.breaker.min_calls,
            failure_rate=request.breaker.failure_rate,
            first_open_seconds=request.breaker.open_seconds,
            max_open_seconds=request.breaker.max_open_seconds,
            budget_seconds=BREAKER_BUDGET_SECONDS)
        self._guard = BreakerGuard(policy, publish=self._breaker_changed)
        # A lost worker's batch is tried again after this long without a heartbeat.
        self._heartbeat = timedelta(seconds=request.heartbeat_timeout_seconds)
        if self._checkpoint.state.get("breaker"):
            self._guard.restore(self._checkpoint.state["breaker"])
        self._breaker_changed(self._guard.snapshot())
        result = await self.run_saga(
            request, lambda: self._execute(request), undo_runs=lambda: [],
            succeeded=self._succeeded, stats=lambda: dict(self._totals))
        if self.continuing:
            assert self._range is not None and self._sizer is not None
            state = {"chain_run_id": self.record_run_id, "lo": self._range[0],
                     "hi": self._range[1], "sizer": self._sizer.as_dict(),
                     "totals": self._totals, "findings": self._findings,
                     "breaker": self._guard.as_dict()}
            await continue_with(self._checkpoint.then(self._next, self.progress, state),
                                params)
        return result

    def _succeeded(self) -> str:
        self.progress.status = "completed"
        if self._range is None or self._range[0] > self._range[1]:
            return "nothing to reconcile: the range is above tip - min confirmations"
        found = ", ".join(f"{n} {c}" for c, n in sorted(self._findings.items()))
        return (f"heights {self._range[0]}..{self._range[1]} reconciled in "
                f"{counted(self._totals['batches'], 'batch', 'batches')}"
                f"; findings: {found or 'none'}")

    # -- the walk ---------------------------------------------------------------------

    async def _execute(self, request: BtcReconcileInput) -> None:
        self.set_search_attributes((BTC_NETWORK, request.network))
        if self._range is None:
            await self._plan(request)
        assert self._range is not None and self._sizer is not None
        lo, hi = self._range
        if self._next is None:
            self._next = self._prefix = lo
        stage = self.progress.stage("reconcile")
        stage.status = "running"
        self.set_stage("reconcile")
        self._publish_cursor()
        in_flight: dict[int, asyncio.Task[None]] = {}
        try:
            await self._walk(request, in_flight)
        except BaseException:
            # Waiting does not pass a cancel or a failure on to the batches under way:
            # stop them, and wait until their activities have ended.
            for task in in_flight.values():
                task.cancel()
            if in_flight:
                pending = list(in_flight.values())
                await self.shielded(lambda: workflow.wait(pending))
            raise
        if self.continuing:
            return
        stage.status = "done"
        await self._supply(hi)
        if self._totals["new_errors"]:
            await self.alert("findings", "error",
                             f"{self._totals['new_errors']} new error findings in heights "
                             f"{lo}..{hi}: {self._findings}")

    async def _walk(self, request: BtcReconcileInput,
                    in_flight: dict[int, asyncio.Task[None]]) -> None:
        this_run = 0
        stop_dispatch = False
        while True:
            while not stop_dispatch and len(in_flight) < request.max_concurrent_batches:
                span = self._take()
                if span is None:
                    break
                in_flight[span[0]] = asyncio.create_task(self._batch(*span))
            if not in_flight:
                break
            await workflow.wait(list(in_flight.values()), return_when=asyncio.FIRST_COMPLETED)
            for start, task in list(in_flight.items()):
                if task.done():
                    del in_flight[start]
                    task.result()  # a run-ending failure ends it here
                    this_run += 1
            if (this_run >= request.checkpoint_every_batches
                    or should_continue(None, this_run)):
                stop_dispatch = True  # drain the window, then go on in a fresh run
            if stop_dispatch and not in_flight:
                if self._retry or self._next is None or self._next > self._top():
                    stop_dispatch = False  # finish the retries (or the end) here
                    this_run = 0
                    continue
                self.continuing = True
                return

    def _top(self) -> int:
        assert self._range is not None
        return self._range[1]

    def _take(self) -> tuple[int, int] | None:
        """The next range to dispatch: a failed one first (at the current size)."""
        assert self._sizer is not None and self._next is not None
        hi = self._top()
        size = self._sizer.size
        if self._retry:
            lo, top = self._retry.pop(0)
            if top - lo + 1 > size:
                self._retry.insert(0, (lo + size, top))
                top = lo + size - 1
            return lo, top
        if self._next > hi:
            return None
        lo, top = self._next, min(self._next + size - 1, hi)
        self._next = top + 1
        return lo, top

    async def _batch(self, lo: int, hi: int) -> None:
        assert self._sizer is not None
        try:
            result: ReconResult = await self._guard.call(
                NODE, lambda: self.run_activity(
                    BtcActivities.reconcile_batch, ReconBatch(self.record_run_id, lo, hi),
                    summary=f"reconcile heights {lo}..{hi}", start_to_close=BATCH_TIMEOUT,
                    heartbeat_timeout=self._heartbeat, retry_policy=BATCH_RETRY),
                is_breaker_failure=_is_breaker_failure, on_open=self._breaker_opened)
        except Exception as err:
            if self.is_cancellation(err) or not _is_breaker_failure(err):
                raise
            failures = self._failures.get(lo, 0) + 1
            self._failures[lo] = failures
            if failures >= MAX_RANGE_FAILURES:
                raise
            # The range goes again, smaller: a batch too big for the node's patience.
            self._sizer.failed()
            self._retry.append((lo, hi))
            self._retry.sort()
            self.progress.publish("batch_size", self._sizer.size)
            self.note(f"heights {lo}..{hi} failed ({failures}x): again at "
                      f"{self._sizer.size} heights per batch")
            return
        self._finished(result)

    def _finished(self, result: ReconResult) -> None:
        assert self._sizer is not None and self._prefix is not None
        stage = self.progress.stage("reconcile")
        heights = result.hi - result.lo + 1
        if not result.already_done:
            self._sizer.observe(heights, result.weight, result.wall_ms)
        self._totals["batches"] += 1
        self._totals["heights"] += result.checked
        self._totals["weight"] += result.weight
        self._totals["new_errors"] += result.new_errors
        self._totals["resolved"] += result.resolved
        for category, n in result.findings.items():
            self._findings[category] = self._findings.get(category, 0) + n
        stage.done += heights
        stage.records.add(result.checked, result.checked)
        self._done[result.lo] = result.hi
        while self._prefix in self._done:
            self._prefix = self._done.pop(self._prefix) + 1
        if result.beyond_tip_from is not None and self._range is not None:
            # The chain got shorter under us (a reorg): the rest is for the next run.
            self._range = (self._range[0], result.beyond_tip_from - 1)
            self.note(f"the node's chain ends below {result.beyond_tip_from}: stopping there")
        self._publish_cursor()
        self.progress.publish("findings", dict(self._findings))
        self.note(f"heights {result.lo}..{result.hi}: "
                  + (", ".join(f"{n} {c}" for c, n in sorted(result.findings.items()))
                     or "no findings"))

    def _publish_cursor(self) -> None:
        assert self._sizer is not None
        self.progress.publish("cursor_height",
                              None if self._prefix is None else self._prefix - 1)
        self.progress.publish("batch_size", self._sizer.size)

    async def _plan(self, request: BtcReconcileInput) -> None:
        stage = self.progress.stage("plan")
        stage.status, stage.total = "running", 1
        self.set_stage("plan")
        plan: RangePlan = await self.run_activity(
            BtcActivities.plan_range,
            RangeRequest(request.from_height, request.to_height, request.recheck_depth,
                         reconcile=True),
            summary="check the node's chain and tip", start_to_close=PLAN_TIMEOUT)
        self._range = (plan.lo, plan.hi)
        sizing = request.batch
        self._sizer = BatchSizer.seeded(sizing.initial, sizing.min, sizing.max,
                                        sizing.target_seconds, plan.ms_per_weight,
                                        plan.weight_per_height)
        stage.status, stage.done = "done", 1
        self.progress.stage("reconcile").total = max(0, plan.hi - plan.lo + 1)
        self.progress.publish("tip", plan.tip)
        self.note(f"node tip {plan.tip}: heights {plan.lo}..{plan.hi}, first batches of "
                  f"{self._sizer.size} heights")

    async def _supply(self, hi: int) -> None:
        stage = self.progress.stage("supply")
        stage.status, stage.total = "running", 1
        self.set_stage("supply")
        assert self._range is not None
        if self._range[0] > self._range[1]:
            stage.status = "skipped"
            return
        supply = await self.run_activity(
            BtcActivities.check_supply, SupplyRequest(self.record_run_id, self._range[1]),
            summary=f"supply check at height {self._range[1]}",
            start_to_close=SUPPLY_TIMEOUT)
        self.progress.publish("supply", supply)
        if supply.get("ok") is False:
            self._findings["supply_mismatch"] = self._findings.get("supply_mismatch", 0) + 1
            self.progress.publish("findings", dict(self._findings))
        stage.status, stage.done = "done", 1

    # -- the breaker ------------------------------------------------------------------

    def _breaker_changed(self, snapshot: dict[str, dict[str, Any]]) -> None:
        breaker = self._guard.breaker(NODE)
        state = breaker.state.value
        self.progress.publish("breaker", {
            "state": state, "failure_rate": round(breaker.failure_rate, 4),
            "opened_at": _rfc3339(breaker.since) if breaker.state is not BreakerState.CLOSED
            else None,
            "next_probe_at": _rfc3339(breaker.open_until)
            if breaker.state is BreakerState.OPEN else None,
            "times_opened": breaker.times_opened})
        self.set_search_attributes((BTC_BREAKER, state))
        # 0 closed, 1 half open, 2 open; the workflow's meter skips replays.
        workflow.metric_meter().create_gauge(
            "pipeworks_btc_breaker_state", "the reconciliation's breaker on the node: "
            "0 closed, 1 half open, 2 open").set(
            _BREAKER_LEVEL[breaker.state], {"workflow_id": workflow.info().workflow_id})

    async def _breaker_opened(self, name: str, breaker: CircuitBreaker) -> None:
        self.note(f"circuit breaker on the {name} open until "
                  f"{_rfc3339(breaker.open_until)}: no batches until then")
        await self.alert("breaker_open", "transient",
                         f"circuit breaker on the Bitcoin node open (failure rate "
                         f"{breaker.failure_rate:.0%})")


def _rfc3339(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
