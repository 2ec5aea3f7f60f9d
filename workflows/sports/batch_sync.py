"""BatchSyncWorkflow: one AccountSyncWorkflow child per matching account, a bounded
number at once. Cancelled, it cancels its running children (each undoes its own
changes) and undoes the children that had finished, newest first."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.sports import BATCH_PIPELINE, PIPELINE
    from activities.sports.activities import SportsActivities
    from activities.sports.search_attributes import ORG_KIND
    from pipeworks import search_attributes
    from pipeworks.progress import RunProgress
    from workflows.base import BOOKKEEPING_TIMEOUT, PipelineWorkflow
    from workflows.children import counted_child, start_or_attach
    from workflows.fanout import fan_out
    from workflows.sports.account_sync import AccountSyncWorkflow
    from workflows.sports.competitions import UNDO_TABLES
    from workflows.sports.inputs import BatchSyncInput


@workflow.defn(name="BatchSyncWorkflow")
class BatchSyncWorkflow(PipelineWorkflow):
    UNDO_TABLES = UNDO_TABLES

    @workflow.init
    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__()
        self.progress = RunProgress.new(workflow.info().workflow_id, BATCH_PIPELINE, ["accounts"],
                                        workflow.now())
        self._finished_runs: list[str] = []   # child run ids, in the order they finished

    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, Any]:
        request = self.validated(BatchSyncInput, params)
        # Finished children are undone newest first; running ones undo themselves.
        return await self.run_saga(
            request, lambda: self._sync_all(request),
            undo_runs=lambda: list(reversed(self._finished_runs)),
            succeeded=self._succeeded, stats=lambda: {"child_runs": self._finished_runs})

    def _succeeded(self) -> str:
        # A failed account alerts on its own; the batch only when it failed as a whole.
        stage = self.progress.stage("accounts")
        self.progress.status = "completed_with_errors" if stage.failed else "completed"
        return f"{stage.done} accounts synced, {stage.failed} failed"

    async def _sync_all(self, request: BatchSyncInput) -> None:
        accounts = await self.run_activity(
            SportsActivities.list_accounts, request.kind,
            summary=f"list {request.kind} accounts", start_to_close=BOOKKEEPING_TIMEOUT)
        stage = self.progress.stage("accounts")
        stage.total, stage.status = len(accounts), "running"
        self.set_search_attributes((ORG_KIND, request.kind))
        self.set_stage("accounts")
        self.note(f"syncing {len(accounts)} accounts, {request.max_concurrent} at once")
        child_input = request.child_options()

        async def one(account_id: int) -> None:
            await self._sync_account(account_id, child_input)

        # Each account's failure is counted where it happens; only cancellation ends it.
        await fan_out(accounts, request.max_concurrent, one, stopping=lambda: self.stopping,
                      is_cancellation=self.is_cancellation)
        stage.status = "done" if not stage.failed else "failed"

    async def _sync_account(self, account_id: int, child_input: dict[str, Any]) -> None:
        """One account's sync as a child; attaches to an on-demand sync already running
        (whose changes are that run's own: a batch cancel does not undo them)."""
        synced = await counted_child(
            self, self.progress.stage("accounts"), f"account {account_id}",
            lambda: start_or_attach(
                self, AccountSyncWorkflow.run, {"account_id": account_id, **child_input},
                workflow_id=f"sports-sync-account-{account_id}",
                summary=f"sync account {account_id}",
                search_attributes=self.child_search_attributes(
                    (search_attributes.PIPELINE, PIPELINE))))
        if synced is not None and synced[1]:
            self._finished_runs.append(synced[1])
