"""AccountSyncWorkflow: one organisation's competitions, then per competition
(several at once) its teams, then its games. A saga: what a failed or cancelled
run changed is undone from the change log before the run ends."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from temporalio import workflow
from temporalio.exceptions import ActivityError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.runs import LeaseRequest, UndoRequest, UndoResult
    from activities.sports import paths
    from activities.sports.activities import OrgRef, OrgRequest, StageRequest
    from activities.sports.stagers import UNDO_ORDER
    from pipeworks.errors import ErrorCategory, category_of, failure_message
    from pipeworks.progress import RunProgress
    from pipeworks.staging import StageOutcome
    from pipeworks.streams import LandedStream, StreamRequest
    from workflows.base import (
        BOOKKEEPING_TIMEOUT,
        PERSISTENT_RETRY,
        DeadlineExceeded,
        PipelineWorkflow,
    )
    from workflows.inputs import AccountSyncInput, describe_input_error

PIPELINE = "sports_sync"
STAGES = ["competitions", "teams", "games"]
UNDO_TABLES = [(spec.name, spec.key) for spec in UNDO_ORDER]
OUTAGE_PAUSE_PATCH = "outage-pause"
OUTAGE_FIRST_PAUSE_SECONDS = 60.0
OUTAGE_MAX_PAUSE_SECONDS = 600.0


class CompetitionFailed(Exception):
    def __init__(self, competition_id: str, cause: BaseException) -> None:
        super().__init__(f"competition {competition_id}: {failure_message(cause)}")
        self.competition_id = competition_id
        self.cause = cause


@workflow.defn(name="AccountSyncWorkflow")
class AccountSyncWorkflow(PipelineWorkflow):
    PIPELINE = PIPELINE

    @workflow.init
    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__()
        self.progress = RunProgress.new(workflow.info().workflow_id, PIPELINE, STAGES,
                                        workflow.now())
        self._merge_totals = {"inserted": 0, "updated": 0, "unchanged": 0, "deleted": 0}
        self._isolated: list[str] = []
        self._request: AccountSyncInput | None = None
        self._lease: LeaseRequest | None = None
        self._stages_done: dict[str, set[str]] = {}  # competition -> entities staged
        self._names: dict[str, str] = {}  # competition id -> name, for summaries
        self._isolated_cause: BaseException | None = None

    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            request = AccountSyncInput.model_validate(params)
        except ValidationError as err:
            raise self.fail_invalid_input(describe_input_error(err)) from None
        self._request = request
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
        slots = asyncio.Semaphore(request.competition_concurrency)
        first_failure: list[CompetitionFailed] = []
        tasks: list[asyncio.Task[None]] = []

        async def one(competition_id: str) -> None:
            async with slots:
                if self.stopping or first_failure:
                    return
                try:
                    await self._competition(request, org, competition_id)
                except Exception as err:
                    if self.is_cancellation(err):
                        raise
                    failed = CompetitionFailed(competition_id, err)
                    if request.on_failure == "isolate":
                        await self._isolate(failed)
                        return
                    if not first_failure:
                        first_failure.append(failed)
                        for task in tasks:
                            if task is not asyncio.current_task():
                                task.cancel()
                    raise failed from None

        tasks.extend(asyncio.create_task(one(c)) for c in competition_ids)
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        if first_failure:
            raise first_failure[0]
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        for stage in (teams, games):
            stage.status = "failed" if stage.failed else "done"

    async def _competitions(self, request: AccountSyncInput, org: OrgRef) -> list[str]:
        stage = self.progress.stage("competitions")
        stage.status, stage.total = "running", 1
        run_id = workflow.info().run_id
        scope = f"{org.kind}:{org.org_id}"
        try:
            landed = await self._fetch(StreamRequest(
                run_id, f"{run_id}/competitions/{scope}", "competitions",
                paths.competitions(org.kind, org.org_id), scope, {}, request.page_size),
                f"fetch competitions of {org.kind} {org.name or org.org_id}")
            stage.records.add(fetched=landed.items)
            outcome = await self._stage(StageRequest(
                run_id, landed.load_id, "competitions", scope),
                f"stage competitions of {org.kind} {org.name or org.org_id}")
        except Exception:
            stage.status, stage.failed = "failed", 1
            raise
        self._count_stage(stage.name, outcome)
        stage.done, stage.status = 1, "done"
        self._names.update(outcome.labels)
        return outcome.keys

    async def _competition(self, request: AccountSyncInput, org: OrgRef,
                           competition_id: str) -> None:
        run_id = workflow.info().run_id
        about = f"competition {self._names.get(competition_id) or competition_id}"
        for entity in ("teams", "games"):
            stage = self.progress.stage(entity)
            params = {}
            if entity == "games" and request.incremental:
                params["updated_since"] = request.since_param() or ""
            path = paths.teams(competition_id) if entity == "teams" else paths.games(
                competition_id)
            landed = await self._fetch(StreamRequest(
                run_id, f"{run_id}/{entity}/{competition_id}", entity, path, competition_id,
                params, request.page_size), f"fetch {entity} of {about}")
            stage.records.add(fetched=landed.items)
            outcome = await self._stage(StageRequest(
                run_id, landed.load_id, entity, competition_id, competition_id,
                org.org_id if org.kind == "club" and entity == "games" else None,
                full_sync=not request.incremental),
                f"stage {entity} of {about}")
            self._count_stage(entity, outcome)
            stage.done += 1
            self._teams_progressed()
            self._stages_done.setdefault(competition_id, set()).add(entity)
            self.note()

    async def _isolate(self, failed: CompetitionFailed) -> None:
        staged = self._stages_done.get(failed.competition_id, set())
        for name in ("teams", "games"):
            stage = self.progress.stage(name)
            if name in staged:  # done, but undone with the rest of the competition
                stage.done -= 1
            stage.failed += 1
        self._isolated.append(failed.competition_id)
        self._isolated_cause = self._isolated_cause or failed.cause
        self._teams_progressed()
        self.note(f"{failed}; undoing that competition's changes")
        await self._undo(failed.competition_id, str(failed))

    def _teams_progressed(self) -> None:
        teams = self.progress.stage("teams")
        if teams.total is not None and teams.done + teams.failed >= teams.total:
            self.set_search_attributes(Stage="games")

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

    async def _undo(self, scope: str | None, reason: str) -> UndoResult:
        request = UndoRequest(workflow.info().run_id, UNDO_TABLES, scope, reason)
        result: UndoResult = await self.shielded(lambda: workflow.execute_activity(
            "undo_run_changes", request, result_type=UndoResult,
            start_to_close_timeout=timedelta(hours=2), heartbeat_timeout=timedelta(seconds=60),
            retry_policy=PERSISTENT_RETRY,
            summary=f"undo changes of {'competition ' + scope if scope else 'the run'}"))
        return result

    # -- activity helpers ----------------------------------------------------

    async def _step(self, name: str, arg: Any, result_type: type[Any], *, summary: str) -> Any:
        return await self.run_activity(name, arg, result_type, summary=summary,
                                       start_to_close=BOOKKEEPING_TIMEOUT)

    async def _fetch(self, request: StreamRequest, summary: str) -> LandedStream:
        """A stream fetch that outlasts upstream outages: when the activity's own
        retries are spent on transient errors, the run pauses (a durable timer, no
        requests) and tries again, until the outage budget is spent."""
        assert self._request is not None
        paused = 0.0
        pause = OUTAGE_FIRST_PAUSE_SECONDS
        while True:
            try:
                landed: LandedStream = await self.run_activity(
                    "sports_fetch_stream", request, LandedStream, summary=summary,
                    start_to_close=timedelta(hours=2),
                    heartbeat_timeout=timedelta(seconds=self._request.heartbeat_timeout_seconds))
                return landed
            except ActivityError as err:
                budget = self._request.outage_budget_seconds
                # Runs started before pausing existed failed here: `patched` (asked
                # last, so only when a pause would happen) keeps their replay intact.
                if (self.is_cancellation(err) or category_of(err) != ErrorCategory.TRANSIENT
                        or paused + pause > budget or not workflow.patched(OUTAGE_PAUSE_PATCH)):
                    raise
            self.note(f"upstream unavailable for {summary}: paused for {pause:g}s "
                      f"({paused:g}s of the {budget:g}s outage budget used)")
            await workflow.sleep(pause)
            paused += pause
            pause = min(pause * 2, OUTAGE_MAX_PAUSE_SECONDS)
            self.note(f"upstream outage: trying {summary} again")

    async def _stage(self, request: StageRequest, summary: str) -> StageOutcome:
        assert self._request is not None
        outcome: StageOutcome = await self.run_activity(
            "sports_stage_stream", request, StageOutcome, summary=summary,
            start_to_close=timedelta(hours=1),
            heartbeat_timeout=timedelta(seconds=self._request.heartbeat_timeout_seconds))
        return outcome

    def _count_stage(self, stage_name: str, outcome: StageOutcome) -> None:
        self.progress.stage(stage_name).records.add(staged=outcome.staged,
                                                    invalid=outcome.invalid)
        if outcome.invalid:
            self.progress.count_errors({ErrorCategory.DATA.value: outcome.invalid})
        for key, n in outcome.merge.items():
            self._merge_totals[key] = self._merge_totals.get(key, 0) + n

    def _summary(self) -> str:
        m = self._merge_totals
        text = (f"{m['inserted']} inserted, {m['updated']} updated, {m['deleted']} deleted, "
                f"{m['unchanged']} unchanged")
        if self._isolated:
            text += f"; rolled back competitions {', '.join(self._isolated)}"
        return text
