"""AccountSyncWorkflow: one organisation's competitions, then per competition
(several at once) its teams, then its games. A saga: what a failed or cancelled
run changed is undone from the change log before the run ends."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from temporalio import workflow
from temporalio.exceptions import ApplicationError, ChildWorkflowError
from temporalio.workflow import ActivityCancellationType, ChildWorkflowCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.runs import LeaseRequest
    from activities.sports import paths
    from activities.sports.activities import (
        OrgRef,
        OrgRequest,
        StageRequest,
        StreamSpec,
        SyncRequest,
    )
    from pipeworks.errors import ErrorCategory, failure_message
    from pipeworks.progress import RunProgress
    from pipeworks.streams import StreamRequest
    from workflows.base import (
        BOOKKEEPING_TIMEOUT,
        PERSISTENT_RETRY,
        DeadlineExceeded,
    )
    from workflows.competitions import (
        OUTAGE_PAUSE_PATCH,
        PART_PROGRESS_SIGNAL,
        SYNC_STREAMS_PATCH,
        UNDO_TABLES,
        CompetitionFailed,
        CompetitionOptions,
        CompetitionsPart,
        CompetitionsSyncWorkflow,
        CompetitionsWorkflow,
    )
    from workflows.inputs import AccountSyncInput, describe_input_error

PIPELINE = "sports_sync"
STAGES = ["competitions", "teams", "games"]
# More competitions than `competitions_per_workflow` are synced by child workflows, one
# part after the other, so that no history grows without bound.
PARTS_PATCH = "competition-parts"
# The parts' progress signals, in all: about 4 history events each in this run.
PART_SIGNALS_BUDGET = 1500
MIN_PART_SIGNALS = 10
# Where they were defined before workflows/competitions.py existed.
__all__ = ["OUTAGE_PAUSE_PATCH", "UNDO_TABLES", "AccountSyncWorkflow"]


@workflow.defn(name="AccountSyncWorkflow")
class AccountSyncWorkflow(CompetitionsWorkflow):
    PIPELINE = PIPELINE

    @workflow.init
    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__()
        self.progress = RunProgress.new(workflow.info().workflow_id, PIPELINE, STAGES,
                                        workflow.now())
        self._request: AccountSyncInput | None = None
        self._lease: LeaseRequest | None = None
        self._parts: dict[int, dict[str, Any]] = {}  # part -> the last counts applied

    @workflow.signal(name=PART_PROGRESS_SIGNAL)
    def part_progress(self, report: dict[str, Any]) -> None:
        self._apply_part(report)

    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            request = AccountSyncInput.model_validate(params)
        except ValidationError as err:
            raise self.fail_invalid_input(describe_input_error(err)) from None
        self._request = request
        self._options = CompetitionOptions(
            request.competition_concurrency, request.page_size,
            request.heartbeat_timeout_seconds, request.outage_budget_seconds,
            request.since_param(), request.on_failure)
        self.progress.status = "running"
        self.note("starting")

        failure: BaseException | None = None
        try:
            await self.record_started(request.model_dump(mode="json", exclude_none=True))
            await self.guard(self._execute(request), request.deadline_seconds)
        except (Exception, asyncio.CancelledError) as err:
            failure = err.cause if isinstance(err, CompetitionFailed) else err
            await self._end_badly(err)
        else:
            self.progress.status = "completed_with_errors" if self._isolated else "completed"
            self.note(self._summary())
        finally:
            if self._lease is not None:
                lease = self._lease  # releasing is idempotent, also if never acquired
                await self.shielded(lambda: workflow.execute_activity(
                    "release_org_lease", lease, start_to_close_timeout=BOOKKEEPING_TIMEOUT,
                    retry_policy=PERSISTENT_RETRY, summary="release organisation lease"))
            self.set_search_attributes(Stage=self.progress.status)
            await self.record_finished({"merge": self._merge_totals,
                                        "isolated_competitions": self._isolated})
            await self.alert_if_needed(failure or self._isolated_cause,
                                       partly_rolled_back=bool(self._isolated))
        return self.final_outcome(failure)

    async def _execute(self, request: AccountSyncInput) -> None:
        """Everything a cancel signal or the deadline may interrupt, lease wait included."""
        org = await self._resolve_org(request)
        await self._acquire_lease(org)
        await self._sync(request, org)

    # -- steps ---------------------------------------------------------------

    async def _resolve_org(self, request: AccountSyncInput) -> OrgRef:
        if request.account_id is not None:
            org_request: OrgRequest = await self._step(
                "sports_lookup_account", request.account_id, OrgRequest,
                summary=f"look up account {request.account_id}")
        else:
            assert request.org_kind is not None and request.org_id is not None
            org_request = OrgRequest(request.org_kind, request.org_id)
        org: OrgRef = await self._step(
            "sports_resolve_org", org_request, OrgRef,
            summary=f"check {org_request.kind} {org_request.org_id} upstream")
        self.set_search_attributes(OrgKind=org.kind, OrgId=org.org_id, Stage="competitions")
        return org

    async def _acquire_lease(self, org: OrgRef) -> None:
        info = workflow.info()
        lease = LeaseRequest(f"sports:association:{org.association_id}", info.workflow_id,
                             info.run_id)
        self._lease = lease
        self.note(f"waiting for other runs on association {org.association_id} to finish")
        await workflow.execute_activity(
            "acquire_org_lease", lease,
            start_to_close_timeout=timedelta(hours=24), heartbeat_timeout=timedelta(seconds=30),
            retry_policy=PERSISTENT_RETRY, summary=f"lease association {org.association_id}",
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED)

    async def _sync(self, request: AccountSyncInput, org: OrgRef) -> None:
        competition_ids = await self._competitions(request, org)
        teams, games = self.progress.stage("teams"), self.progress.stage("games")
        teams.total = games.total = len(competition_ids)
        teams.status = games.status = "running" if competition_ids else "done"
        if competition_ids:
            self.set_search_attributes(Stage="teams")
        self.note(f"syncing {len(competition_ids)} competitions of {org.kind} {org.org_id}")
        if (len(competition_ids) > request.competitions_per_workflow
                and workflow.patched(PARTS_PATCH)):
            await self._sync_parts(request, org, competition_ids)
        else:
            await self._run_competitions(competition_ids, org)
        for stage in (teams, games):
            stage.status = "failed" if stage.failed else "done"

    async def _competitions(self, request: AccountSyncInput, org: OrgRef) -> list[str]:
        stage = self.progress.stage("competitions")
        stage.status, stage.total = "running", 1
        run_id = workflow.info().run_id
        scope = f"{org.kind}:{org.org_id}"
        about = f"competitions of {org.kind} {org.name or org.org_id}"
        try:
            if workflow.patched(SYNC_STREAMS_PATCH):
                outcome = (await self._sync_streams(SyncRequest(
                    run_id, scope, [StreamSpec("competitions",
                                               paths.competitions(org.kind, org.org_id))],
                    request.page_size), f"sync {about}")).streams[0]
                stage.records.add(fetched=outcome.fetched)
            else:
                landed = await self._fetch(StreamRequest(
                    run_id, f"{run_id}/competitions/{scope}", "competitions",
                    paths.competitions(org.kind, org.org_id), scope, {}, request.page_size),
                    f"fetch {about}")
                stage.records.add(fetched=landed.items)
                outcome = await self._stage(StageRequest(
                    run_id, landed.load_id, "competitions", scope), f"stage {about}")
        except Exception:
            stage.status, stage.failed = "failed", 1
            raise
        self._count_stage(stage.name, outcome)
        stage.done, stage.status = 1, "done"
        self._names.update(outcome.labels)
        return outcome.keys

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
                options.outage_budget_seconds, options.since, options.on_failure, signals)
            self.note(f"part {number} of {len(chunks)}: {len(chunk)} competitions")
            try:
                report = await workflow.execute_child_workflow(
                    CompetitionsSyncWorkflow.run, part,
                    id=f"{info.workflow_id}-part-{number}-of-{len(chunks)}-{info.run_id}",
                    static_summary=f"competitions, part {number} of {len(chunks)}",
                    cancellation_type=ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED)
            except ChildWorkflowError as err:
                counted = self._failed_part_report(err)
                if counted is not None:
                    self._apply_part(counted)  # its failure is counted in there
                elif not self.is_cancellation(err):
                    self.count_failure(err)
                raise
            self._apply_part(report)
            self.stop_if_cancel_requested()

    @staticmethod
    def _failed_part_report(err: ChildWorkflowError) -> dict[str, Any] | None:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.details:
            report = cause.details[0]
            if isinstance(report, dict) and "part" in report:
                return report
        return None

    def _apply_part(self, report: dict[str, Any]) -> None:
        """Adds what a part counted since its last report. Reports are cumulative; a
        late one (older than what was applied) changes nothing."""
        part = int(report.get("part", 0))
        last = self._parts.get(part)
        if last is not None and (last.get("final") or (
                not report.get("final") and int(last.get("seq", 0)) >= int(report.get("seq", 0)))):
            return
        self._parts[part] = report
        for name in ("teams", "games"):
            new, old = report.get(name, {}), (last or {}).get(name, {})
            stage = self.progress.stage(name)

            def delta(key: str, new: dict[str, Any] = new, old: dict[str, Any] = old) -> int:
                return int(new.get(key, 0)) - int(old.get(key, 0))

            stage.done += delta("done")
            stage.failed += delta("failed")
            stage.records.add(delta("fetched"), delta("staged"), delta("invalid"))
        old_errors = (last or {}).get("errors", {})
        self.progress.count_errors({k: int(n) - int(old_errors.get(k, 0))
                                    for k, n in report.get("errors", {}).items()})
        old_merge = (last or {}).get("merge", {})
        for key, n in report.get("merge", {}).items():
            self._merge_totals[key] = self._merge_totals.get(key, 0) + int(n) - int(
                old_merge.get(key, 0))
        isolated = list(report.get("isolated", []))
        self._isolated.extend(isolated[len((last or {}).get("isolated", [])):])
        category = report.get("isolated_category")
        if self._isolated_cause is None and isinstance(category, str):
            self._isolated_cause = ApplicationError(
                "a competition failed", type=ErrorCategory(category).error_type)
        self._teams_progressed()
        self.note()

    async def _end_badly(self, err: BaseException) -> None:
        # Changes are only made while holding the lease; before it there is nothing to undo.
        undo = self._lease is not None
        self.set_search_attributes(Stage="compensating")
        if self.is_cancellation(err):
            self.progress.status = "compensating"
            self.note(f"cancelled ({self._cancel_reason or 'cancel requested'}); undoing changes")
            final, reason = "cancelled", f"cancelled: {self._cancel_reason or 'cancel request'}"
        else:
            # Activity failures were counted where they happened; a deadline is not one.
            if isinstance(err, DeadlineExceeded):
                self.progress.count_error(ErrorCategory.SYSTEM)
            self.progress.status = "compensating"
            reason = failure_message(err)
            self.note(f"failed: {reason}; undoing changes")
            final = "failed"
        for stage in self.progress.stages:
            if stage.status in ("running", "pending"):
                stage.status = "failed" if final == "failed" else "skipped"
        if undo:
            await self._undo(None, reason)
        # Either undone, or nothing had been changed: the tables are as before the run.
        self.progress.rolled_back = True
        self.progress.status = final  # type: ignore[assignment]
        self.note(f"{reason}; " + ("changes rolled back" if undo else "nothing was changed"))

    # -- activity helpers ----------------------------------------------------------

    async def _step(self, name: str, arg: Any, result_type: type[Any], *, summary: str) -> Any:
        return await self.run_activity(name, arg, result_type, summary=summary,
                                       start_to_close=BOOKKEEPING_TIMEOUT)

    def _summary(self) -> str:
        m = self._merge_totals
        text = (f"{m['inserted']} inserted, {m['updated']} updated, {m['deleted']} deleted, "
                f"{m['unchanged']} unchanged")
        if self._isolated:
            text += f"; rolled back competitions {', '.join(self._isolated)}"
        return text
