"""BatchSyncWorkflow: one AccountSyncWorkflow child per matching account, a bounded
number at once. Cancelled, it cancels its running children (each undoes its own
changes) and undoes the children that had finished, newest first."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
)

with workflow.unsafe.imports_passed_through():
    from activities.runs import UndoRequest, UndoResult
    from pipeworks.errors import failure_message
    from pipeworks.progress import RunProgress
    from workflows.account_sync import UNDO_TABLES, AccountSyncWorkflow
    from workflows.base import BOOKKEEPING_TIMEOUT, PERSISTENT_RETRY, PipelineWorkflow
    from workflows.inputs import BatchSyncInput, describe_input_error

PIPELINE = "sports_sync_batch"


@workflow.defn(name="BatchSyncWorkflow")
class BatchSyncWorkflow(PipelineWorkflow):
    @workflow.init
    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__()
        self.progress = RunProgress.new(workflow.info().workflow_id, PIPELINE, ["accounts"],
                                        workflow.now())
        self._finished_runs: list[str] = []   # child run ids, in the order they finished

    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            request = BatchSyncInput.model_validate(params)
        except ValidationError as err:
            raise self.fail_invalid_input(describe_input_error(err)) from None
        self.progress.status = "running"
        self.note("listing accounts")
        failure: BaseException | None = None
        try:
            await self.record_started(request.model_dump(mode="json", exclude_none=True))
            await self.guard(self._sync_all(request), request.deadline_seconds)
        except (Exception, asyncio.CancelledError) as err:
            failure = err
            await self._end_badly(err)
        else:
            stage = self.progress.stage("accounts")
            self.progress.status = "completed_with_errors" if stage.failed else "completed"
            self.note(f"{stage.done} accounts synced, {stage.failed} failed")
        finally:
            self.set_search_attributes(Stage=self.progress.status)
            await self.record_finished({"child_runs": self._finished_runs})
            # A failed account alerts on its own; the batch only when it failed as a whole.
            await self.alert_if_needed(failure)
        return self.final_outcome(failure)

    async def _sync_all(self, request: BatchSyncInput) -> None:
        accounts: list[int] = await self.run_activity(
            "sports_list_accounts", request.kind, list, summary=f"list {request.kind} accounts",
            start_to_close=BOOKKEEPING_TIMEOUT)
        stage = self.progress.stage("accounts")
        stage.total, stage.status = len(accounts), "running"
        self.set_search_attributes(OrgKind=request.kind, Stage="accounts")
        self.note(f"syncing {len(accounts)} accounts, {request.max_concurrent} at once")
        slots = asyncio.Semaphore(request.max_concurrent)
        child_input = request.child_options()

        async def one(account_id: int) -> None:
            async with slots:
                if self.stopping:
                    return
                await self._sync_account(account_id, child_input)

        results = await asyncio.gather(*(one(a) for a in accounts), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        stage.status = "done" if not stage.failed else "failed"

    async def _sync_account(self, account_id: int, child_input: dict[str, Any]) -> None:
        stage = self.progress.stage("accounts")
        try:
            result, run_id = await self._run_child(account_id, child_input)
        except (ChildWorkflowError, ActivityError) as err:
            # Only the batch's own cancellation stops it; a child cancelled from
            # outside is one failed account.
            task = asyncio.current_task()
            if self.stopping or (task is not None and task.cancelling()):
                raise
            if isinstance(err, ChildWorkflowError):  # activity failures count themselves
                self.count_failure(err)
            stage.failed += 1
            self.note(f"account {account_id} failed: {failure_message(err)}")
            return
        if run_id:
            self._finished_runs.append(run_id)
        stage.done += 1
        records = result.get("records", {})
        stage.records.add(int(records.get("fetched", 0)), int(records.get("staged", 0)),
                          int(records.get("invalid", 0)))
        self.progress.count_errors(result.get("errors", {}))
        self.note()

    async def _run_child(self, account_id: int, child_input: dict[str, Any]
                         ) -> tuple[dict[str, Any], str | None]:
        """The child's result and run id; attaches to an on-demand sync already running
        (whose changes are that run's own: a batch cancel does not undo them)."""
        workflow_id = f"sports-sync-account-{account_id}"
        try:
            handle = await workflow.start_child_workflow(
                AccountSyncWorkflow.run, {"account_id": account_id, **child_input},
                id=workflow_id, static_summary=f"sync account {account_id}",
                search_attributes=self.child_search_attributes(
                    Pipeline=AccountSyncWorkflow.PIPELINE))
        except WorkflowAlreadyStartedError:
            attached: dict[str, Any] = await self.run_activity(
                "await_workflow", workflow_id, dict, summary=f"attach to {workflow_id}",
                start_to_close=timedelta(hours=24), heartbeat_timeout=timedelta(seconds=30))
            return attached, None
        result: dict[str, Any] = await handle
        return result, handle.first_execution_run_id

    async def _end_badly(self, err: BaseException) -> None:
        stage = self.progress.stage("accounts")
        cancelled = self.is_cancellation(err)
        self.progress.status = "compensating"
        reason = (f"cancelled: {self._cancel_reason or 'cancel request'}" if cancelled
                  else failure_message(err))
        self.note(f"{reason}; undoing {len(self._finished_runs)} finished account syncs")
        for run_id in reversed(self._finished_runs):
            request = UndoRequest(run_id, UNDO_TABLES, None, reason)
            await self.shielded(lambda r=request: workflow.execute_activity(  # type: ignore[misc]
                "undo_run_changes", r, result_type=UndoResult,
                start_to_close_timeout=timedelta(hours=2), heartbeat_timeout=timedelta(seconds=60),
                retry_policy=PERSISTENT_RETRY,
                summary=f"undo account sync run {r.run_id}"))
        stage.status = "skipped" if cancelled else "failed"
        self.progress.rolled_back = True
        self.progress.status = "cancelled" if cancelled else "failed"
        self.note(f"{reason}; changes rolled back")
