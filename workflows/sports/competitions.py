"""What an organisation's sync does per competition, shared by `AccountSyncWorkflow` and
`CompetitionsSyncWorkflow` (a part of a large organisation's competitions, run as a
child so that no history grows without bound).

Per competition ONE activity, `sports_sync_streams`, fetches (lands) the teams, stages
them, then fetches and stages the games. The kernel's fan-out runs several competitions
at once, its circuit breaker outlasts upstream outages, and its undo isolates a failed
competition."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.sports import PIPELINE
    from activities.sports.activities import (
        OrgRef,
        SportsActivities,
        competition_streams,
    )
    from activities.sports.stagers import UNDO_ORDER
    from pipeworks.breaker import BreakerPolicy, CircuitBreaker
    from pipeworks.errors import ErrorCategory, category_of
    from pipeworks.progress import RunProgress
    from pipeworks.staging import StageOutcome
    from pipeworks.streams import StreamSpec, SyncOutcome, SyncRequest
    from workflows.base import PipelineWorkflow
    from workflows.breaker import BreakerGaveUp, BreakerGuard
    from workflows.fanout import ItemFailed, fan_out
    from workflows.parts import PartReporter, stage_counts

UNDO_TABLES = [spec.name for spec in UNDO_ORDER]
SYNC_STREAMS_TIMEOUT = timedelta(hours=3)
PART_PROGRESS_SIGNAL = "competitions_part_progress"
# The sports API has one breaker: every stream comes from it.
UPSTREAM = "sports_api"


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
    # The run's circuit breakers as the part before left them: one breaker per upstream
    # for the whole run, not a fresh one (and a fresh outage budget) per part.
    breakers: dict[str, Any] = field(default_factory=dict)

    def options(self) -> CompetitionOptions:
        return CompetitionOptions(self.concurrency, self.page_size,
                                  self.heartbeat_timeout_seconds, self.outage_budget_seconds,
                                  self.since, self.on_failure)


def breaker_policy(budget_seconds: float) -> BreakerPolicy:
    """An activity reaches the breaker only after its own 8 attempts (each retrying
    requests in-process) are spent, so one such failure is evidence enough of an outage:
    pause 60 s, doubling up to 10 min, within the run's outage budget."""
    return BreakerPolicy.on_first_failure(budget_seconds=budget_seconds)


def is_outage(err: BaseException) -> bool:
    return isinstance(err, ActivityError) and category_of(err) == ErrorCategory.TRANSIENT


class CompetitionsWorkflow(PipelineWorkflow):
    """Subclasses set `self.progress` (with stages `teams` and `games`) and
    `self._options` before calling `_run_competitions`."""

    UNDO_TABLES: ClassVar[list[str]] = UNDO_TABLES

    def __init__(self) -> None:
        super().__init__()
        self._options: CompetitionOptions | None = None
        self._merge_totals = {"inserted": 0, "updated": 0, "unchanged": 0, "deleted": 0}
        self._isolated: list[str] = []
        self._isolated_cause: BaseException | None = None
        self._stages_done: dict[str, set[str]] = {}  # competition -> entities staged
        self._names: dict[str, str] = {}  # competition id -> name, for summaries
        self._breakers: BreakerGuard | None = None

    @property
    def changes_run_id(self) -> str:
        """The run id the change log and the loads are keyed by (what an undo covers)."""
        return workflow.info().run_id

    @property
    def options(self) -> CompetitionOptions:
        assert self._options is not None
        return self._options

    @property
    def breakers(self) -> BreakerGuard:
        if self._breakers is None:
            self._breakers = BreakerGuard(breaker_policy(self.options.outage_budget_seconds),
                                          publish=self._publish_breakers)
        return self._breakers

    def breakers_state(self) -> dict[str, Any]:
        """The breakers' whole state, to carry into the next part."""
        return self._breakers.as_dict() if self._breakers is not None else {}

    def _publish_breakers(self, snapshot: dict[str, Any]) -> None:
        """The breakers show in `progress` once one has opened: until then the document
        keeps exactly the contract's keys."""
        if "breakers" in self.progress.extra or any(
                b.get("opened") or b.get("state") != "closed" for b in snapshot.values()):
            self.progress.extra["breakers"] = snapshot

    def _progressed(self) -> None:
        """Called after each competition (done or isolated)."""

    # -- the competitions, several at once -------------------------------------------

    async def _run_competitions(self, competition_ids: list[str], org: OrgRef) -> None:
        async def sync(competition_id: str) -> None:
            await self._competition(org, competition_id)
            self._progressed()

        async def isolate(competition_id: str, failed: ItemFailed) -> None:
            await self._isolate(failed)
            self._progressed()

        await fan_out(
            competition_ids, self.options.concurrency, sync,
            stopping=lambda: self.stopping, is_cancellation=self.is_cancellation,
            isolate=isolate if self.options.on_failure == "isolate" else None,
            label=lambda competition_id: f"competition {competition_id}")

    async def _competition(self, org: OrgRef, competition_id: str) -> None:
        about = f"competition {self._names.get(competition_id) or competition_id}"
        request = SyncRequest(
            self.changes_run_id, competition_id,
            competition_streams(competition_id, org.org_id if org.kind == "club" else None,
                                self.options.since),
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

    async def _isolate(self, failed: ItemFailed) -> None:
        staged = self._stages_done.get(failed.item, set())
        for name in ("teams", "games"):
            stage = self.progress.stage(name)
            if name in staged:  # done, but undone with the rest of the competition
                stage.done -= 1
            stage.failed += 1
        self._isolated.append(failed.item)
        self._isolated_cause = self._isolated_cause or failed.cause
        self._teams_progressed()
        self.note(f"{failed}; undoing that competition's changes")
        await self.undo(self.changes_run_id, failed.item, str(failed))

    def _teams_progressed(self) -> None:
        teams = self.progress.stage("teams")
        if teams.total is not None and teams.done + teams.failed >= teams.total:
            self.set_stage("games")

    # -- activity helpers ----------------------------------------------------------

    async def _sync_streams(self, request: SyncRequest, summary: str) -> SyncOutcome:
        """Through the upstream's circuit breaker: when the activity's own retries are
        spent on transient errors, the run pauses (a durable timer, no requests) and
        tries again, until the outage budget is spent. Retrying is safe: what an
        earlier attempt landed or staged is found in Postgres."""
        async def attempt() -> SyncOutcome:
            return await self.run_activity(
                SportsActivities.sync_streams, request, summary=summary,
                start_to_close=SYNC_STREAMS_TIMEOUT,
                heartbeat_timeout=timedelta(seconds=self.options.heartbeat_timeout_seconds))

        async def opened(name: str, breaker: CircuitBreaker) -> None:
            message = (f"upstream unavailable for {summary}: circuit {name} open until "
                       f"{breaker.summary()['open_until']}, no requests meanwhile "
                       f"(outage budget {self.options.outage_budget_seconds:g}s)")
            self.note(message)
            await self.alert("breaker_open", ErrorCategory.TRANSIENT.value, message)

        if self.options.outage_budget_seconds <= 0:
            return await attempt()
        try:
            # A failure that meets a cancel is the cancel's, not an outage to wait out.
            return await self.breakers.call(
                UPSTREAM, attempt, on_open=opened,
                is_breaker_failure=lambda err: not self.stopping and is_outage(err))
        except BreakerGaveUp as refused:
            self.count_failure(refused)  # refused without a request: still a failure
            raise

    async def sync_one_stream(self, spec: StreamSpec, scope: str, summary: str
                              ) -> StageOutcome:
        synced = await self._sync_streams(
            SyncRequest(self.changes_run_id, scope, [spec], self.options.page_size),
            summary)
        return synced.streams[0]

    def _count_stage(self, stage_name: str, outcome: StageOutcome) -> None:
        self.progress.stage(stage_name).records.add(staged=outcome.staged,
                                                    invalid=outcome.invalid)
        if outcome.invalid:
            self.progress.count_errors({ErrorCategory.DATA.value: outcome.invalid})
        for key, n in outcome.merge.items():
            self._merge_totals[key] = self._merge_totals.get(key, 0) + n

    def counts(self) -> dict[str, Any]:
        """What a part reports to its parent (cumulative, so a lost or late report
        is harmless)."""
        return {
            "stages": {name: stage_counts(self.progress.stage(name))
                       for name in ("teams", "games")},
            "errors": dict(self.progress.errors),
            "totals": dict(self._merge_totals),
            "lists": {"isolated": list(self._isolated)},
            "latest": {"isolated_category": (category_of(self._isolated_cause).value
                                             if self._isolated_cause is not None else None),
                       "breakers": self.breakers_state()},
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
        self._reporter = PartReporter(part.part, part.progress_signals, PART_PROGRESS_SIGNAL,
                                      self.counts)

    @property
    def changes_run_id(self) -> str:
        return self._changes_run_id

    @workflow.run
    async def run(self, part: CompetitionsPart) -> dict[str, Any]:
        self._options = part.options()
        if part.breakers:
            self.breakers.restore(part.breakers)
        self._names.update(part.names)
        for name in ("teams", "games"):
            stage = self.progress.stage(name)
            stage.total, stage.status = len(part.competitions), "running"
        self.progress.status = "running"
        self.note(f"part {part.part} of {part.parts}: {len(part.competitions)} competitions")
        try:
            await self.guard(self._run_competitions(part.competitions, part.org), None)
        except ItemFailed as failed:
            self.progress.status = "failed"
            self.note(str(failed))
            await self._reporter.done()
            raise ApplicationError(str(failed), self._reporter.report(final=True),
                                   type=category_of(failed.cause).error_type,
                                   non_retryable=True) from None
        except BaseException as err:
            if self._cancel_reason is None or not self.is_cancellation(err):
                raise  # the parent cancelled it: the parent undoes the run
            # Someone sent this part the cancel signal: the run cannot complete.
            self.progress.status = "cancelled"
            await self._reporter.done()
            raise ApplicationError(f"part cancelled: {self._cancel_reason}",
                                   self._reporter.report(final=True), type="Cancelled",
                                   non_retryable=True) from None
        for name in ("teams", "games"):
            stage = self.progress.stage(name)
            stage.status = "failed" if stage.failed else "done"
        self.progress.status = "completed_with_errors" if self._isolated else "completed"
        self.note(f"part {part.part} of {part.parts} done")
        await self._reporter.done()
        return self._reporter.report(final=True)

    def _progressed(self) -> None:
        self._reporter.progressed()
