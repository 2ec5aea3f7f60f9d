"""F1SessionSyncWorkflow: one session's streams, then its derived metrics, then its
quality checks. A saga: what a failed or cancelled run changed is undone from the
change log (raw and derived rows; stream states and quality checks stay as an audit
trail)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.f1 import PIPELINE
    from activities.f1.activities import (
        DeriveRequest,
        F1Activities,
        FollowUpRequest,
        QualityRequest,
        SessionPlan,
        SessionRequest,
        StreamFailure,
    )
    from activities.f1.search_attributes import F1_SESSION, F1_YEAR
    from pipeworks.errors import failure_message
    from pipeworks.progress import RunProgress
    from workflows.base import BOOKKEEPING_TIMEOUT, PERSISTENT_RETRY
    from workflows.f1.inputs import F1SessionSyncInput
    from workflows.f1.session_steps import (
        HEARTBEAT_TIMEOUT,
        STEP_TIMEOUT,
        SYNC_TIMEOUT,
        SessionWriter,
    )

STAGES = ["fetch", "derive", "quality"]
FOLLOW_UP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)


@workflow.defn(name="F1SessionSyncWorkflow")
class F1SessionSyncWorkflow(SessionWriter):
    @workflow.init
    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__()
        self.progress = RunProgress.new(workflow.info().workflow_id, PIPELINE, STAGES,
                                        workflow.now())
        self._plan: SessionPlan | None = None

    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, Any]:
        request = self.validated(F1SessionSyncInput, params)
        self.progress.publish("mode", request.mode)
        return await self.run_saga(
            request, lambda: self._execute(request),
            # Changes are only made while holding the lease; before it there is nothing.
            undo_runs=lambda: [workflow.info().run_id] if self.leased else [],
            succeeded=self._succeeded, before_finish=self._finish, stats=self.stats)

    async def _finish(self) -> None:
        """A run whose changes were undone records its streams as failed: the state
        they were staged with (ok, empty) no longer holds."""
        if self.progress.rolled_back and self._plan is not None:
            await self._record_failed(self._plan, self.progress.message or "rolled back")
        await self.release_session_lease()

    def _succeeded(self) -> str:
        self.progress.status = "completed"
        return self.merge_summary()

    async def _execute(self, request: F1SessionSyncInput) -> None:
        await self.acquire_session_lease(request.session_key)
        self.set_stage("fetch")
        changed = await self._fetch(request)
        await self._derive(request.session_key, changed)
        gaps = await self._check_quality(request.session_key)
        await self._schedule_follow_ups(gaps)

    async def _fetch(self, request: F1SessionSyncInput) -> bool:
        stage = self.progress.stage("fetch")
        stage.status = "running"
        run_id = workflow.info().run_id
        full = request.mode == "full"
        self.note(f"planning the {request.mode} pull of session {request.session_key}")
        fresh = request.calendar_synced
        plan = await self.run_activity(
            F1Activities.plan_session,
            SessionRequest(run_id, request.session_key, full, refresh_header=not fresh,
                           meeting=not fresh),
            summary=f"plan session {request.session_key}", start_to_close=STEP_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT)
        self._plan = plan
        self.set_search_attributes((F1_YEAR, plan.date_start[:4]),
                                   (F1_SESSION, str(plan.session_key)))
        # The session's own row, re-read by the plan, counts as a stream too.
        stage.total = len(plan.request.streams) + (0 if fresh else 1)
        stage.done = stage.total - len(plan.request.streams)
        self.note(f"{plan.session_name}: pulling {len(plan.request.streams)} streams")
        try:
            synced = await self.run_activity(
                F1Activities.sync_streams, plan.request,
                summary=f"sync {len(plan.request.streams)} streams of {plan.session_name}",
                start_to_close=SYNC_TIMEOUT, heartbeat_timeout=HEARTBEAT_TIMEOUT)
        except Exception as err:
            if not self.is_cancellation(err):
                stage.status, stage.failed = "failed", stage.total - stage.done
            raise
        changed = self.count_synced(stage, synced, plan.header_merge)
        stage.done, stage.status = stage.total, "done"
        self.note()
        return changed

    async def _record_failed(self, plan: SessionPlan, reason: str) -> None:
        failure = StreamFailure(workflow.info().run_id, plan.session_key,
                                [s.entity for s in plan.request.streams
                                 if s.entity != "meetings"], reason)
        await self.shielded(lambda: workflow.execute_activity_method(
            F1Activities.record_stream_failures, failure,
            start_to_close_timeout=BOOKKEEPING_TIMEOUT, retry_policy=PERSISTENT_RETRY,
            summary="record failed streams"))

    async def _derive(self, session_key: int, changed: bool) -> None:
        stage = self.progress.stage("derive")
        stage.status, stage.total = "running", 1
        self.set_stage("derive")
        derived = await self.run_activity(
            F1Activities.derive_session,
            DeriveRequest(workflow.info().run_id, session_key, changed),
            summary=f"derive metrics of session {session_key}", start_to_close=STEP_TIMEOUT)
        stage.done, stage.status = 1, "done" if derived.computed or changed else "skipped"
        if derived.computed:
            partial = f" (partial: {', '.join(derived.partial)})" if derived.partial else ""
            self.note(f"metrics {derived.metric_version}: {derived.changes}{partial}")

    async def _check_quality(self, session_key: int) -> bool:
        stage = self.progress.stage("quality")
        stage.status, stage.total = "running", 1
        self.set_stage("quality")
        quality = await self.run_activity(
            F1Activities.check_quality, QualityRequest(workflow.info().run_id, session_key),
            summary=f"quality checks of session {session_key}", start_to_close=STEP_TIMEOUT)
        stage.done, stage.status = 1, "done"
        self.progress.publish("quality", {"checks": quality.checks, "failed": quality.failed,
                                          "lap_gaps": quality.gaps})
        return bool(quality.gaps)

    async def _schedule_follow_ups(self, gaps: bool) -> None:
        """A finished session is read again later (late corrections); a gap soon."""
        plan = self._plan
        assert plan is not None
        if workflow.now() < datetime.fromisoformat(plan.date_end) and not gaps:
            return  # not over yet: a live run or a later sync takes care of it
        try:
            scheduled = await self.run_activity(
                F1Activities.schedule_follow_ups,
                FollowUpRequest(plan.session_key, plan.date_end, gaps,
                                self.search_attributes_on()),
                summary="schedule follow-up syncs", start_to_close=STEP_TIMEOUT,
                retry_policy=FOLLOW_UP_RETRY)
        except ActivityError as err:
            if self.is_cancellation(err):
                raise
            # Bookkeeping: the synced data stands; the failure is counted and said.
            self.note(f"could not schedule follow-up syncs: {failure_message(err)}")
            return
        self.progress.publish("follow_ups", {"full_syncs_at": scheduled.follow_ups,
                                             "refetch_at": scheduled.refetch})
