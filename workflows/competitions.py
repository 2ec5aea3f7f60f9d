"""What an organisation's sync does per competition, shared by `AccountSyncWorkflow` and
`CompetitionsSyncWorkflow` (a part of a large organisation's competitions, run as a
child so that no history grows without bound).

Per competition, runs since the `sync-streams` patch use ONE activity,
`sports_sync_streams`: it fetches (lands) the teams, stages them, then fetches and
stages the games. Runs started before it replay the four activities they issued
(fetch teams, stage teams, fetch games, stage games)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.runs import UndoRequest, UndoResult
    from activities.sports import paths
    from activities.sports.activities import (
        OrgRef,
        StageRequest,
        StreamSpec,
        SyncOutcome,
        SyncRequest,
    )
    from activities.sports.stagers import UNDO_ORDER
    from pipeworks.errors import ErrorCategory, category_of, failure_message
    from pipeworks.progress import RunProgress, StageProgress
    from pipeworks.staging import StageOutcome
    from pipeworks.streams import LandedStream, StreamRequest
    from workflows.base import PERSISTENT_RETRY, PipelineWorkflow

PIPELINE = "sports_sync"
UNDO_TABLES = [(spec.name, spec.key) for spec in UNDO_ORDER]
OUTAGE_PAUSE_PATCH = "outage-pause"
# One activity fetches and stages a competition's teams and games (and, before them,
# the organisation's competitions): one Temporal round trip instead of four.
SYNC_STREAMS_PATCH = "sync-streams"
OUTAGE_FIRST_PAUSE_SECONDS = 60.0
OUTAGE_MAX_PAUSE_SECONDS = 600.0
SYNC_STREAMS_TIMEOUT = timedelta(hours=3)
# A part reports its counts to the parent at most this often, and at most
# `CompetitionsPart.progress_signals` times (each signal is a few history events of
# the parent: the budget keeps its history bounded).
PART_PROGRESS_SECONDS = 2.0
PART_PROGRESS_SIGNAL = "competitions_part_progress"


class CompetitionFailed(Exception):
    def __init__(self, competition_id: str, cause: BaseException) -> None:
        super().__init__(f"competition {competition_id}: {failure_message(cause)}")
        self.competition_id = competition_id
        self.cause = cause


@dataclass(frozen=True)
class CompetitionOptions:
    """What the per-competition steps need of a run's input."""

    concurrency: int
    page_size: int
    heartbeat_timeout_seconds: float
    outage_budget_seconds: float
    since: str | None           # incremental: games updated since (RFC 3339), else None
    on_failure: str             # "rollback" | "isolate"

    @property
    def incremental(self) -> bool:
        return self.since is not None


@dataclass
class CompetitionsPart:
    """Input of a `CompetitionsSyncWorkflow`: ids and options, never records."""

    changes_run_id: str         # the parent's run id: changes and loads are logged under it
    part: int                   # 1-based
    parts: int
    org: OrgRef
    competitions: list[str]
    names: dict[str, str] = field(default_factory=dict)
    concurrency: int = 4
    page_size: int = 100
    heartbeat_timeout_seconds: float = 30.0
    outage_budget_seconds: float = 3600.0
    since: str | None = None
    on_failure: str = "rollback"
    progress_signals: int = 100

    def options(self) -> CompetitionOptions:
        return CompetitionOptions(self.concurrency, self.page_size,
                                  self.heartbeat_timeout_seconds, self.outage_budget_seconds,
                                  self.since, self.on_failure)


def _stage_counts(stage: StageProgress) -> dict[str, int]:
    return {"done": stage.done, "failed": stage.failed, "fetched": stage.records.fetched,
            "staged": stage.records.staged, "invalid": stage.records.invalid}


class CompetitionsWorkflow(PipelineWorkflow):
    """Subclasses set `self.progress` (with stages `teams` and `games`) and
    `self._options` before calling `_run_competitions`."""

    def __init__(self) -> None:
        super().__init__()
        self._options: CompetitionOptions | None = None
        self._merge_totals = {"inserted": 0, "updated": 0, "unchanged": 0, "deleted": 0}
        self._isolated: list[str] = []
        self._isolated_cause: BaseException | None = None
        self._stages_done: dict[str, set[str]] = {}  # competition -> entities staged
        self._names: dict[str, str] = {}  # competition id -> name, for summaries

    @property
    def changes_run_id(self) -> str:
        """The run id the change log and the loads are keyed by (what an undo covers)."""
        return workflow.info().run_id

    @property
    def options(self) -> CompetitionOptions:
        assert self._options is not None
        return self._options

    def _progressed(self) -> None:
        """Called after each competition (done or isolated)."""

    # -- the competitions, several at once -------------------------------------------

    async def _run_competitions(self, competition_ids: list[str], org: OrgRef) -> None:
        slots = asyncio.Semaphore(self.options.concurrency)
        first_failure: list[CompetitionFailed] = []
        tasks: list[asyncio.Task[None]] = []

        async def one(competition_id: str) -> None:
            async with slots:
                if self.stopping or first_failure:
                    return
                try:
                    await self._competition(org, competition_id)
                except Exception as err:
                    if self.is_cancellation(err):
                        raise
                    failed = CompetitionFailed(competition_id, err)
                    if self.options.on_failure == "isolate":
                        await self._isolate(failed)
                        self._progressed()
                        return
                    if not first_failure:
                        first_failure.append(failed)
                        for task in tasks:
                            if task is not asyncio.current_task():
                                task.cancel()
                    raise failed from None
                self._progressed()

        tasks.extend(asyncio.create_task(one(c)) for c in competition_ids)
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        if first_failure:
            raise first_failure[0]
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _competition(self, org: OrgRef, competition_id: str) -> None:
        if workflow.patched(SYNC_STREAMS_PATCH):
            await self._competition_in_one(org, competition_id)
            return
        # Runs started before the patch: four activities per competition.
        run_id = workflow.info().run_id
        about = f"competition {self._names.get(competition_id) or competition_id}"
        for entity in ("teams", "games"):
            stage = self.progress.stage(entity)
            params = {}
            if entity == "games" and self.options.incremental:
                params["updated_since"] = self.options.since or ""
            path = paths.teams(competition_id) if entity == "teams" else paths.games(
                competition_id)
            landed = await self._fetch(StreamRequest(
                run_id, f"{run_id}/{entity}/{competition_id}", entity, path, competition_id,
                params, self.options.page_size), f"fetch {entity} of {about}")
            stage.records.add(fetched=landed.items)
            outcome = await self._stage(StageRequest(
                run_id, landed.load_id, entity, competition_id, competition_id,
                org.org_id if org.kind == "club" and entity == "games" else None,
                full_sync=not self.options.incremental),
                f"stage {entity} of {about}")
            self._count_stage(entity, outcome)
            stage.done += 1
            self._teams_progressed()
            self._stages_done.setdefault(competition_id, set()).add(entity)
            self.note()

    async def _competition_in_one(self, org: OrgRef, competition_id: str) -> None:
        about = f"competition {self._names.get(competition_id) or competition_id}"
        games_params = {"updated_since": self.options.since or ""} if (
            self.options.incremental) else {}
        request = SyncRequest(
            self.changes_run_id, competition_id, [
                StreamSpec("teams", paths.teams(competition_id), {}, competition_id),
                StreamSpec("games", paths.games(competition_id), games_params, competition_id,
                           org.org_id if org.kind == "club" else None)],
            self.options.page_size, full_sync=not self.options.incremental)
        synced = await self._sync_streams(request, f"sync teams and games of {about}")
        for entity, outcome in zip(("teams", "games"), synced.streams, strict=True):
            stage = self.progress.stage(entity)
            stage.records.add(fetched=outcome.fetched)
            self._count_stage(entity, outcome)
            stage.done += 1
            self._stages_done.setdefault(competition_id, set()).add(entity)
        self._teams_progressed()
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

    async def _undo(self, scope: str | None, reason: str) -> UndoResult:
        request = UndoRequest(self.changes_run_id, UNDO_TABLES, scope, reason)
        result: UndoResult = await self.shielded(lambda: workflow.execute_activity(
            "undo_run_changes", request, result_type=UndoResult,
            start_to_close_timeout=timedelta(hours=2), heartbeat_timeout=timedelta(seconds=60),
            retry_policy=PERSISTENT_RETRY,
            summary=f"undo changes of {'competition ' + scope if scope else 'the run'}"))
        return result

    # -- activity helpers ----------------------------------------------------------

    async def _fetch(self, request: StreamRequest, summary: str) -> LandedStream:
        landed: LandedStream = await self._outlasting(
            "sports_fetch_stream", request, LandedStream, summary, timedelta(hours=2))
        return landed

    async def _sync_streams(self, request: SyncRequest, summary: str) -> SyncOutcome:
        synced: SyncOutcome = await self._outlasting(
            "sports_sync_streams", request, SyncOutcome, summary, SYNC_STREAMS_TIMEOUT)
        return synced

    async def _outlasting(self, name: str, arg: Any, result_type: type[Any], summary: str,
                          start_to_close: timedelta) -> Any:
        """An activity that fetches, and outlasts upstream outages: when its own retries
        are spent on transient errors, the run pauses (a durable timer, no requests) and
        tries again, until the outage budget is spent. Retrying is safe: what an
        earlier attempt landed or staged is found in Postgres."""
        paused = 0.0
        pause = OUTAGE_FIRST_PAUSE_SECONDS
        while True:
            try:
                return await self.run_activity(
                    name, arg, result_type, summary=summary, start_to_close=start_to_close,
                    heartbeat_timeout=timedelta(seconds=self.options.heartbeat_timeout_seconds))
            except ActivityError as err:
                budget = self.options.outage_budget_seconds
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
        outcome: StageOutcome = await self.run_activity(
            "sports_stage_stream", request, StageOutcome, summary=summary,
            start_to_close=timedelta(hours=1),
            heartbeat_timeout=timedelta(seconds=self.options.heartbeat_timeout_seconds))
        return outcome

    def _count_stage(self, stage_name: str, outcome: StageOutcome) -> None:
        self.progress.stage(stage_name).records.add(staged=outcome.staged,
                                                    invalid=outcome.invalid)
        if outcome.invalid:
            self.progress.count_errors({ErrorCategory.DATA.value: outcome.invalid})
        for key, n in outcome.merge.items():
            self._merge_totals[key] = self._merge_totals.get(key, 0) + n

    def counts(self) -> dict[str, Any]:
        """What a part reports to its parent (cumulative, so a lost or late report
        is harmless): per stage done/failed/records, errors, merge totals, isolated."""
        return {
            "teams": _stage_counts(self.progress.stage("teams")),
            "games": _stage_counts(self.progress.stage("games")),
            "errors": dict(self.progress.errors),
            "merge": dict(self._merge_totals),
            "isolated": list(self._isolated),
            "isolated_category": (category_of(self._isolated_cause).value
                                  if self._isolated_cause is not None else None),
        }


@workflow.defn(name="CompetitionsSyncWorkflow")
class CompetitionsSyncWorkflow(CompetitionsWorkflow):
    """A part of an organisation's competitions, for an `AccountSyncWorkflow` whose
    organisation has more than `competitions_per_workflow` of them. It runs under the
    parent's lease and logs its changes under the parent's run id, so the parent's
    undo covers them. It reports its counts to the parent with signals (at most every
    2 s) and returns them; it never undoes a whole run itself (with `isolate`, it undoes
    a failed competition). A failed competition (`rollback`) fails the part with the
    competition's error category and its counts; the parent then undoes everything."""

    @workflow.init
    def __init__(self, part: CompetitionsPart) -> None:
        super().__init__()
        self.progress = RunProgress.new(workflow.info().workflow_id, PIPELINE,
                                        ["teams", "games"], workflow.now())
        self._part = part
        self._changes_run_id = part.changes_run_id
        self._signals_sent = 0
        self._last_signal: datetime = workflow.now()
        self._signal: asyncio.Task[None] | None = None

    @property
    def changes_run_id(self) -> str:
        return self._changes_run_id

    @workflow.run
    async def run(self, part: CompetitionsPart) -> dict[str, Any]:
        self._options = part.options()
        self._names.update(part.names)
        for name in ("teams", "games"):
            stage = self.progress.stage(name)
            stage.total, stage.status = len(part.competitions), "running"
        self.progress.status = "running"
        self.note(f"part {part.part} of {part.parts}: {len(part.competitions)} competitions")
        try:
            await self.guard(self._run_competitions(part.competitions, part.org), None)
        except CompetitionFailed as failed:
            self.progress.status = "failed"
            self.note(str(failed))
            await self._signals_done()
            raise ApplicationError(str(failed), self._report(final=True),
                                   type=category_of(failed.cause).error_type,
                                   non_retryable=True) from None
        except asyncio.CancelledError:
            if self._cancel_reason is None:
                raise  # the parent cancelled it: the parent undoes the run
            # Someone sent this part the cancel signal: the run cannot complete.
            self.progress.status = "cancelled"
            await self._signals_done()
            raise ApplicationError(f"part cancelled: {self._cancel_reason}",
                                   self._report(final=True), type="Cancelled",
                                   non_retryable=True) from None
        for name in ("teams", "games"):
            stage = self.progress.stage(name)
            stage.status = "failed" if stage.failed else "done"
        self.progress.status = "completed_with_errors" if self._isolated else "completed"
        self.note(f"part {part.part} of {part.parts} done")
        await self._signals_done()
        return self._report(final=True)

    def _report(self, *, final: bool) -> dict[str, Any]:
        return {"part": self._part.part, "seq": self._signals_sent + (1 if final else 0),
                "final": final, **self.counts()}

    def _progressed(self) -> None:
        now = workflow.now()
        if (self._signals_sent >= self._part.progress_signals
                or (self._signal is not None and not self._signal.done())
                or (now - self._last_signal).total_seconds() < PART_PROGRESS_SECONDS):
            return
        self._signals_sent += 1
        self._last_signal = now
        self._signal = asyncio.create_task(self._send(self._report(final=False)))

    async def _send(self, report: dict[str, Any]) -> None:
        parent = workflow.info().parent
        if parent is None:
            return
        try:
            await workflow.get_external_workflow_handle(
                parent.workflow_id, run_id=parent.run_id).signal(PART_PROGRESS_SIGNAL, report)
        except Exception as err:  # progress is best effort; the result carries it all
            workflow.logger.warning("part progress not delivered: %s", err)

    async def _signals_done(self) -> None:
        if self._signal is not None and not self._signal.done():
            await self._signal
