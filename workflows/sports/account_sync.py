"""AccountSyncWorkflow: one organisation's competitions, then per competition
(several at once) its teams, then its games. A saga: what a failed or cancelled
run changed is undone from the change log before the run ends."""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError, ChildWorkflowError
from temporalio.workflow import ChildWorkflowCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.runs import LeaseRequest
    from activities.sports import PIPELINE
    from activities.sports.activities import (
        OrgRef,
        OrgRequest,
        SportsActivities,
        competitions_stream,
    )
    from activities.sports.search_attributes import ORG_ID, ORG_KIND
    from pipeworks.errors import ErrorCategory
    from pipeworks.progress import RunProgress
    from workflows.base import BOOKKEEPING_TIMEOUT
    from workflows.parts import PartsProgress, failed_part_report, run_part
    from workflows.sports.competitions import (
        PART_PROGRESS_SIGNAL,
        CompetitionOptions,
        CompetitionsPart,
        CompetitionsSyncWorkflow,
        CompetitionsWorkflow,
    )
    from workflows.sports.inputs import AccountSyncInput

STAGES = ["competitions", "teams", "games"]
# The parts' progress signals, in all: about 4 history events each in this run.
PART_SIGNALS_BUDGET = 1500
MIN_PART_SIGNALS = 10


@workflow.defn(name="AccountSyncWorkflow")
class AccountSyncWorkflow(CompetitionsWorkflow):
    @workflow.init
    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__()
        self.progress = RunProgress.new(workflow.info().workflow_id, PIPELINE, STAGES,
                                        workflow.now())
        self._lease: LeaseRequest | None = None
        self._parts = PartsProgress()

    @workflow.signal(name=PART_PROGRESS_SIGNAL)
    def part_progress(self, report: dict[str, Any]) -> None:
        self._apply_part(report)

    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, Any]:
        request = self.validated(AccountSyncInput, params)
        self._options = CompetitionOptions(
            request.competition_concurrency, request.page_size,
            request.heartbeat_timeout_seconds, request.outage_budget_seconds,
            request.since_param(), request.on_failure)
        return await self.run_saga(
            request, lambda: self._execute(request),
            # Changes are only made while holding the lease; before it there is nothing.
            undo_runs=lambda: [self.changes_run_id] if self._lease is not None else [],
            succeeded=self._succeeded, before_finish=self._release_lease,
            stats=lambda: {"merge": self._merge_totals,
                           "isolated_competitions": self._isolated},
            isolated_cause=lambda: self._isolated_cause if self._isolated else None)

    def _succeeded(self) -> str:
        self.progress.status = "completed_with_errors" if self._isolated else "completed"
        return self._summary()

    async def _release_lease(self) -> None:
        if self._lease is not None:
            await self.release_lease(self._lease, "release organisation lease")

    async def _execute(self, request: AccountSyncInput) -> None:
        """Everything a cancel signal or the deadline may interrupt, lease wait included."""
        org = await self._resolve_org(request)
        await self._acquire_lease(org)
        await self._sync(request, org)

    # -- steps ---------------------------------------------------------------

    async def _resolve_org(self, request: AccountSyncInput) -> OrgRef:
        if request.account_id is not None:
            org_request = await self.run_activity(
                SportsActivities.lookup_account, request.account_id,
                summary=f"look up account {request.account_id}",
                start_to_close=BOOKKEEPING_TIMEOUT)
        else:
            assert request.org_kind is not None and request.org_id is not None
            org_request = OrgRequest(request.org_kind, request.org_id)
        org = await self.run_activity(
            SportsActivities.resolve_org, org_request,
            summary=f"check {org_request.kind} {org_request.org_id} upstream",
            start_to_close=BOOKKEEPING_TIMEOUT)
        self.set_search_attributes((ORG_KIND, org.kind), (ORG_ID, org.org_id))
        self.set_stage("competitions")
        return org

    async def _acquire_lease(self, org: OrgRef) -> None:
        info = workflow.info()
        lease = LeaseRequest(f"sports:association:{org.association_id}", info.workflow_id,
                             info.run_id)
        self._lease = lease
        self.note(f"waiting for other runs on association {org.association_id} to finish")
        await self.acquire_lease(lease, f"lease association {org.association_id}")

    async def _sync(self, request: AccountSyncInput, org: OrgRef) -> None:
        competition_ids = await self._competitions(org)
        teams, games = self.progress.stage("teams"), self.progress.stage("games")
        teams.total = games.total = len(competition_ids)
        teams.status = games.status = "running" if competition_ids else "done"
        if competition_ids:
            self.set_stage("teams")
        self.note(f"syncing {len(competition_ids)} competitions of {org.kind} {org.org_id}")
        if len(competition_ids) > request.competitions_per_workflow:
            await self._sync_parts(request, org, competition_ids)
        else:
            await self._run_competitions(competition_ids, org)
        for stage in (teams, games):
            stage.status = "failed" if stage.failed else "done"

    async def _competitions(self, org: OrgRef) -> list[str]:
        stage = self.progress.stage("competitions")
        stage.status, stage.total = "running", 1
        about = f"competitions of {org.kind} {org.name or org.org_id}"
        try:
            outcome = await self.sync_one_stream(
                competitions_stream(org.kind, org.org_id), f"{org.kind}:{org.org_id}",
                f"sync {about}")
        except Exception:
            stage.status, stage.failed = "failed", 1
            raise
        stage.records.add(fetched=outcome.fetched)
        self._count_stage(stage.name, outcome)
        stage.done, stage.status = 1, "done"
        self._names.update(outcome.labels)
        return [str(key) for key in outcome.keys]

    # -- large organisations: parts as child workflows --------------------------------

    async def _sync_parts(self, request: AccountSyncInput, org: OrgRef,
                          competition_ids: list[str]) -> None:
        """One `CompetitionsSyncWorkflow` per `competitions_per_workflow` competitions,
        one after the other. Their changes are logged under this run's id, so the undo
        of this run covers them; a cancel waits for the running part to stop its
        activities before the undo."""
        size = request.competitions_per_workflow
        chunks = [competition_ids[i:i + size] for i in range(0, len(competition_ids), size)]
        signals = max(MIN_PART_SIGNALS, PART_SIGNALS_BUDGET // len(chunks))
        info = workflow.info()
        options = self.options
        for number, chunk in enumerate(chunks, 1):
            part = CompetitionsPart(
                info.run_id, number, len(chunks), org, chunk,
                {c: self._names[c] for c in chunk if c in self._names},
                options.concurrency, options.page_size, options.heartbeat_timeout_seconds,
                options.outage_budget_seconds, options.since, options.on_failure, signals,
                self.breakers_state())
            self.note(f"part {number} of {len(chunks)}: {len(chunk)} competitions")

            def start(part: CompetitionsPart = part, number: int = number
                      ) -> Any:
                return workflow.execute_child_workflow(
                    CompetitionsSyncWorkflow.run, part,
                    id=f"{info.workflow_id}-part-{number}-of-{len(chunks)}-{info.run_id}",
                    static_summary=f"competitions, part {number} of {len(chunks)}",
                    cancellation_type=ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED)

            try:
                await run_part(start, self._apply_part)
            except ChildWorkflowError as err:
                # A part's own failures are counted in its report.
                if failed_part_report(err) is None and not self.is_cancellation(err):
                    self.count_failure(err)
                raise
            self.stop_if_cancel_requested()

    def _apply_part(self, report: dict[str, Any]) -> None:
        """Adds what a part counted since its last report."""
        delta = self._parts.apply(report, self.progress)
        if delta is None:
            return
        for key, n in delta.totals.items():
            self._merge_totals[key] = self._merge_totals.get(key, 0) + n
        self._isolated.extend(delta.lists.get("isolated", []))
        carried = delta.latest.get("breakers")
        if isinstance(carried, dict) and carried and report.get("final"):
            self.breakers.restore(carried)  # the next part goes on from here
        category = delta.latest.get("isolated_category")
        if self._isolated_cause is None and isinstance(category, str):
            self._isolated_cause = ApplicationError(
                "a competition failed", type=ErrorCategory(category).error_type)
        self._teams_progressed()
        self.note()

    def _summary(self) -> str:
        m = self._merge_totals
        text = (f"{m['inserted']} inserted, {m['updated']} updated, {m['deleted']} deleted, "
                f"{m['unchanged']} unchanged")
        if self._isolated:
            text += f"; rolled back competitions {', '.join(self._isolated)}"
        return text
