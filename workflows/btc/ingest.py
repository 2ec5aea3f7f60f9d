"""BtcIngestWorkflow: the main-chain blocks of a range of heights, with their
transactions and `btc.block_calcs`, in keyset batches of heights (one activity each).

Resumable: it continues as new every `checkpoint_every_batches` batches (or when
Temporal suggests it), carrying the next height and the chain's first run id, under
which every batch's changes are logged, so a failed or cancelled ingest is undone as a
whole, whichever run of the chain it failed in."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.btc import PIPELINE
    from activities.btc.activities import BtcActivities, IngestBatch, RangeRequest
    from activities.btc.search_attributes import BTC_NETWORK
    from activities.btc.tables import UNDO_ORDER
    from pipeworks.progress import RunProgress, counted
    from workflows.base import PipelineWorkflow
    from workflows.btc.inputs import BtcIngestInput
    from workflows.checkpoint import Checkpoint, continue_with, restore, should_continue

STAGES = ["plan", "ingest"]
BATCH_TIMEOUT = timedelta(minutes=10)
PLAN_TIMEOUT = timedelta(minutes=2)


@workflow.defn(name="BtcIngestWorkflow")
class BtcIngestWorkflow(PipelineWorkflow):
    UNDO_TABLES = UNDO_ORDER

    @workflow.init
    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__()
        self._range: tuple[int, int] | None = None
        self._merge: dict[str, dict[str, int]] = {}
        self._batches = 0
        restored = restore(params, self._read_state)
        self._bad_checkpoint = restored.error
        self._checkpoint = restored.checkpoint
        self.progress = restored.progress or RunProgress.new(
            workflow.info().workflow_id, PIPELINE, STAGES, workflow.now())
        self._cursor: int | None = (int(self._checkpoint.cursor)
                                    if self._checkpoint.cursor is not None else None)

    def _read_state(self, checkpoint: Checkpoint) -> None:
        state = checkpoint.state
        self.chain_run_id = str(state["chain_run_id"])
        self._range = (int(state["lo"]), int(state["hi"]))
        self._merge = dict(state.get("merge", {}))
        self._batches = int(state.get("batches", 0))

    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, Any]:
        request = self.validated(BtcIngestInput, params)
        if self._bad_checkpoint is not None:
            raise self.fail_invalid_input(self._bad_checkpoint)
        result = await self.run_saga(
            request, lambda: self._execute(request),
            undo_runs=lambda: [self.record_run_id] if self._batches else [],
            succeeded=self._succeeded,
            stats=lambda: {"batches": self._batches, "merge": self._merge})
        if self.continuing:
            assert self._range is not None
            state = {"chain_run_id": self.record_run_id, "lo": self._range[0],
                     "hi": self._range[1], "merge": self._merge, "batches": self._batches}
            await continue_with(self._checkpoint.then(self._cursor, self.progress, state),
                                params)
        return result

    def _succeeded(self) -> str:
        self.progress.status = "completed"
        if self._range is None or self._range[0] > self._range[1]:
            return "nothing to ingest: the range is above tip - min confirmations"
        lo, hi = self._range
        blocks = self._merge.get("blocks", {})
        batches = counted(self._batches, "batch", "batches")
        return (f"heights {lo}..{hi} ingested in {batches}; blocks: "
                f"{blocks.get('inserted', 0)} inserted, {blocks.get('updated', 0)} updated,"
                f" {blocks.get('unchanged', 0)} unchanged")

    async def _execute(self, request: BtcIngestInput) -> None:
        self.set_search_attributes((BTC_NETWORK, request.network))
        if self._range is None:
            await self._plan(request)
        assert self._range is not None
        lo, hi = self._range
        stage = self.progress.stage("ingest")
        stage.status = "running"
        self.set_stage("ingest")
        cursor = self._cursor if self._cursor is not None else lo
        this_run = 0
        while cursor <= hi:
            top = min(cursor + request.batch_heights - 1, hi)
            result = await self.run_activity(
                BtcActivities.ingest_batch, IngestBatch(self.record_run_id, cursor, top),
                summary=f"ingest heights {cursor}..{top}", start_to_close=BATCH_TIMEOUT,
                heartbeat_timeout=timedelta(seconds=request.heartbeat_timeout_seconds))
            self._batches += 1
            this_run += 1
            stage.done += top - cursor + 1
            stage.records.add(result.blocks + result.transactions,
                              result.blocks + result.transactions)
            for table, counts in result.merge.items():
                total = self._merge.setdefault(table, {})
                for key, n in counts.items():
                    total[key] = total.get(key, 0) + n
            self.progress.publish("merge", self._merge)
            self.progress.publish("cursor_height", top)
            self.note(f"heights {cursor}..{top}: {result.blocks} blocks, "
                      f"{result.transactions} transactions")
            cursor = top + 1
            self._cursor = cursor
            if cursor <= hi and should_continue(request.checkpoint_every_batches, this_run):
                self.continuing = True
                return
        stage.status = "done"

    async def _plan(self, request: BtcIngestInput) -> None:
        stage = self.progress.stage("plan")
        stage.status, stage.total = "running", 1
        self.set_stage("plan")
        plan = await self.run_activity(
            BtcActivities.plan_range, RangeRequest(request.from_height, request.to_height),
            summary="check the node's chain and tip", start_to_close=PLAN_TIMEOUT)
        self._range = (plan.lo, plan.hi)
        stage.status, stage.done = "done", 1
        self.progress.stage("ingest").total = max(0, plan.hi - plan.lo + 1)
        self.progress.publish("tip", plan.tip)
        self.note(f"node tip {plan.tip}: heights {plan.lo}..{plan.hi}")
