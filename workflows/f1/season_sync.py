"""F1SeasonSyncWorkflow: a season's calendar (meetings and sessions), then one
`F1SessionSyncWorkflow` child per selected session that started and is not cancelled,
a bounded number at once. A failed session undoes itself and the season goes on
(`completed_with_errors`); cancelled, the season cancels its running children (each
undoes its own changes) and undoes the finished ones and its calendar, newest first."""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.workflow import ChildWorkflowCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.f1 import PIPELINE
    from activities.f1.activities import (
        F1Activities,
        SeasonSelection,
        SessionRef,
        calendar_request,
    )
    from activities.f1.search_attributes import F1_SESSION, F1_YEAR
    from pipeworks import search_attributes
    from pipeworks.progress import RunProgress
    from workflows.base import BOOKKEEPING_TIMEOUT
    from workflows.children import counted_child, start_or_attach
    from workflows.f1.inputs import F1SeasonSyncInput
    from workflows.f1.session_steps import HEARTBEAT_TIMEOUT, SYNC_TIMEOUT, SessionWriter
    from workflows.f1.session_sync import F1SessionSyncWorkflow
    from workflows.fanout import fan_out

STAGES = ["calendar", "sessions"]


@workflow.defn(name="F1SeasonSyncWorkflow")
class F1SeasonSyncWorkflow(SessionWriter):
    @workflow.init
    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__()
        self.progress = RunProgress.new(workflow.info().workflow_id, PIPELINE, STAGES,
                                        workflow.now())
        self._finished_runs: list[str] = []   # session runs, in the order they finished
        self._failed_sessions: list[str] = []

    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, Any]:
        request = self.validated(F1SeasonSyncInput, params)
        return await self.run_saga(
            request, lambda: self._execute(request),
            # Finished sessions newest first, then the calendar (this run's own changes).
            undo_runs=lambda: [*reversed(self._finished_runs), workflow.info().run_id],
            succeeded=self._succeeded,
            stats=lambda: {**self.stats(), "session_runs": self._finished_runs,
                           "failed_sessions": self._failed_sessions})

    def _succeeded(self) -> str:
        stage = self.progress.stage("sessions")
        self.progress.status = "completed_with_errors" if stage.failed else "completed"
        failed = f" (failed: {', '.join(self._failed_sessions)})" if stage.failed else ""
        return f"{stage.done} sessions synced, {stage.failed} failed{failed}"

    async def _execute(self, request: F1SeasonSyncInput) -> None:
        self.set_search_attributes((F1_YEAR, str(request.year)))
        sessions = await self._calendar(request)
        stage = self.progress.stage("sessions")
        stage.total, stage.status = len(sessions), "running"
        self.set_stage("sessions")
        self.note(f"syncing {len(sessions)} sessions of {request.year}, "
                  f"{request.max_concurrent_sessions} at once")

        async def one(session: SessionRef) -> None:
            await self._session(session, request.mode)

        await fan_out(sessions, request.max_concurrent_sessions, one,
                      stopping=lambda: self.stopping, is_cancellation=self.is_cancellation,
                      key=lambda s: str(s.session_key), label=lambda s: s.label)
        stage.status = "failed" if stage.failed else "done"

    async def _calendar(self, request: F1SeasonSyncInput) -> list[SessionRef]:
        stage = self.progress.stage("calendar")
        stage.status, stage.total = "running", 2
        self.set_stage("calendar")
        synced = await self.run_activity(
            F1Activities.sync_streams,
            calendar_request(request.year, workflow.info().run_id, request.mode == "full"),
            summary=f"sync the {request.year} calendar", start_to_close=SYNC_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT)
        self.count_synced(stage, synced)
        names = request.session_names
        selection = SeasonSelection(request.year, list(request.meeting_keys or []),
                                    None if names is None else list(names))
        sessions = await self.run_activity(
            F1Activities.season_sessions, selection,
            summary=f"select sessions of {request.year}", start_to_close=BOOKKEEPING_TIMEOUT)
        stage.done, stage.status = 2, "done"
        return sessions

    async def _session(self, session: SessionRef, mode: str) -> None:
        """One session's sync as a child; attaches to a sync of the session already
        running (whose changes are that run's own: a season cancel does not undo them)."""
        synced = await counted_child(
            self, self.progress.stage("sessions"), session.label,
            lambda: start_or_attach(
                self, F1SessionSyncWorkflow.run,
                {"session_key": session.session_key, "mode": mode, "calendar_synced": True},
                workflow_id=f"f1-session-{session.session_key}",
                summary=f"sync {session.label}", search_attributes=self.child_search_attributes(
                    (search_attributes.PIPELINE, PIPELINE),
                    (F1_SESSION, str(session.session_key))),
                cancellation_type=ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED))
        if synced is None:
            self._failed_sessions.append(str(session.session_key))
        elif synced[1]:
            self._finished_runs.append(synced[1])
            self.undo_sessions[synced[1]] = session.session_key
