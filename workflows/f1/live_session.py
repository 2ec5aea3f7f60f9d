"""F1LiveSessionWorkflow: polls a running session every `poll_seconds` (an incremental
pull of every stream from its watermark, the derived metrics when rows changed), shows
each stream's lag in `progress`, and when the session is over ends with a `full`
`F1SessionSyncWorkflow` of it.

History stays bounded however long the session: one activity and one timer per poll,
and the run continues as new every `polls_per_run` polls (200) (or when Temporal suggests
it), carrying its poll count, its progress and the chain's first run id (all polls'
changes are logged under it, so cancelling undoes the whole live run)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError, WorkflowAlreadyStartedError
from temporalio.workflow import ChildWorkflowCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.f1 import PIPELINE
    from activities.f1.activities import F1Activities, PollRequest, PollResult
    from activities.f1.search_attributes import F1_SESSION
    from activities.runs import RunActivities
    from pipeworks import search_attributes
    from pipeworks.progress import RunProgress
    from workflows.checkpoint import Checkpoint, continue_with, restore, should_continue
    from workflows.f1.inputs import F1LiveSessionInput
    from workflows.f1.session_steps import HEARTBEAT_TIMEOUT, SYNC_TIMEOUT, SessionWriter
    from workflows.f1.session_sync import F1SessionSyncWorkflow

STAGES = ["poll", "final"]
# The live quality checks (timeliness) run every this many polls; the streams without
# a timestamp (full refreshes: drivers, stints, results) are read every TIMELESS_EVERY.
QUALITY_EVERY = 12
TIMELESS_EVERY = 3
# Past its scheduled end + 2 h, a session whose streams bring nothing new for this long
# is over (a replayed session runs on its own clock, past the wall clock's grace).
STALE_AFTER = timedelta(minutes=5)
# The shortest wait between two polls, however long the last one took.
MIN_PAUSE = timedelta(milliseconds=500)


@workflow.defn(name="F1LiveSessionWorkflow")
class F1LiveSessionWorkflow(SessionWriter):
    @workflow.init
    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__()
        self._last_advance = workflow.now()
        restored = restore(params, self._read_state)
        self._bad_checkpoint = restored.error
        self.progress = restored.progress or RunProgress.new(
            workflow.info().workflow_id, PIPELINE, STAGES, workflow.now())
        self._checkpoint = restored.checkpoint
        self._polls = int(self._checkpoint.cursor or 0)

    def _read_state(self, checkpoint: Checkpoint) -> None:
        self.chain_run_id = str(checkpoint.state["chain_run_id"])
        self.merge_totals.update(checkpoint.state.get("merge", {}))
        self._last_advance = datetime.fromisoformat(str(checkpoint.state["last_advance"]))

    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, Any]:
        request = self.validated(F1LiveSessionInput, params)
        if self._bad_checkpoint is not None:
            raise self.fail_invalid_input(self._bad_checkpoint)
        self.undo_sessions[self.record_run_id] = request.session_key
        result = await self.run_saga(
            request, lambda: self._execute(request),
            undo_runs=lambda: [self.record_run_id] if self.leased or self._polls else [],
            succeeded=self._succeeded, before_finish=self.release_session_lease,
            stats=lambda: {**self.stats(), "polls": self._polls})
        if self.continuing:
            # The lease stays held: the next run of this workflow id takes it over.
            state = {"chain_run_id": self.record_run_id, "merge": self.merge_totals,
                     "last_advance": self._last_advance.isoformat()}
            await continue_with(self._checkpoint.then(self._polls, self.progress, state),
                                params)
        return result

    def _succeeded(self) -> str:
        self.progress.status = "completed"
        return f"{self._polls} polls; {self.merge_summary()}; then a full sync"

    async def _execute(self, request: F1LiveSessionInput) -> None:
        self.set_search_attributes((F1_SESSION, str(request.session_key)))
        await self.acquire_session_lease(request.session_key)
        poll = self.progress.stage("poll")
        poll.status = "running"
        self.set_stage("poll")
        polls_this_run = 0
        while True:
            poll_started = workflow.now()
            result = await self._poll(request, first_of_run=polls_this_run == 0)
            polls_this_run += 1
            if any(result.merge.get(k, 0) for k in ("inserted", "updated")):
                self._last_advance = workflow.now()
            over = result.status.reason if result.status.finished else None
            if (over is None and result.status.past_grace
                    and workflow.now() - self._last_advance >= STALE_AFTER):
                over = "two hours past the scheduled end, and nothing new since"
            if over is not None:
                self.note(f"session over ({over}): final full sync")
                break
            if should_continue(request.polls_per_run, polls_this_run):
                self.continuing = True
                return
            # Polls start every `poll_seconds`: the wait is what the poll left of it.
            # There is always a timer (MIN_PAUSE at least): a slow upstream still gets a
            # breath, and histories recorded before keep the same commands.
            pause = (timedelta(seconds=request.poll_seconds)
                     - (workflow.now() - poll_started))
            await workflow.sleep(max(pause, MIN_PAUSE), summary="until the next poll")
        poll.status = "done"
        # The final full sync is a run of its own, under the session's lease.
        await self.release_session_lease()
        await self._final_sync(request.session_key)

    async def _poll(self, request: F1LiveSessionInput, *, first_of_run: bool) -> PollResult:
        self._polls += 1
        result = await self.run_activity(
            F1Activities.poll_session,
            PollRequest(self.record_run_id, request.session_key, self._polls,
                        refresh_header=first_of_run,
                        quality=self._polls % QUALITY_EVERY == 1,
                        timeless=first_of_run or self._polls % TIMELESS_EVERY == 1),
            summary=f"poll {self._polls} of session {request.session_key}",
            start_to_close=SYNC_TIMEOUT, heartbeat_timeout=HEARTBEAT_TIMEOUT)
        poll = self.progress.stage("poll")
        poll.done = self._polls
        poll.records.add(result.fetched, result.staged, result.invalid)
        if result.invalid:
            self.progress.count_errors({"data": result.invalid})
        for key, n in result.merge.items():
            self.merge_totals[key] = self.merge_totals.get(key, 0) + n
        self.progress.publish("merge", dict(self.merge_totals))
        self.progress.publish("lag_seconds", result.status.lag_seconds)
        if result.quality_failed:
            self.progress.publish("quality_failed", result.quality_failed)
        self.note(f"poll {self._polls}: {result.staged} rows staged"
                  + (", metrics updated" if result.derived else ""))
        return result

    async def _final_sync(self, session_key: int) -> None:
        stage = self.progress.stage("final")
        stage.status, stage.total = "running", 1
        self.set_stage("final")
        try:
            result = await self._full_sync(session_key)
        except ChildWorkflowError as err:
            stage.status, stage.failed = "failed", 1
            if not self.is_cancellation(err):
                self.count_failure(err)
            raise
        stage.done, stage.status = 1, "done"
        records = result.get("records", {})
        stage.records.add(int(records.get("fetched", 0)), int(records.get("staged", 0)),
                          int(records.get("invalid", 0)))

    async def _full_sync(self, session_key: int) -> dict[str, Any]:
        """A `full` F1SessionSyncWorkflow of the session. One of it already running is
        waited for; when that one was incremental (a season's, a re-fetch), the full
        one starts after it."""
        workflow_id = f"f1-session-{session_key}"
        while True:
            try:
                handle = await workflow.start_child_workflow(
                    F1SessionSyncWorkflow.run, {"session_key": session_key, "mode": "full"},
                    id=workflow_id, static_summary=f"full sync of session {session_key}",
                    cancellation_type=ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
                    search_attributes=self.child_search_attributes(
                        (search_attributes.PIPELINE, PIPELINE),
                        (F1_SESSION, str(session_key))))
            except WorkflowAlreadyStartedError:
                attached = await self.run_activity(
                    RunActivities.await_workflow, workflow_id,
                    summary=f"attach to {workflow_id}", start_to_close=timedelta(hours=24),
                    heartbeat_timeout=timedelta(seconds=30))
                if attached.get("mode") == "full":
                    return attached
                continue
            result: dict[str, Any] = await handle
            return result
