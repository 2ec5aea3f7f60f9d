"""ExampleSyncWorkflow: each station's readings, two stations at once, a saga."""

from __future__ import annotations

from collections.abc import Coroutine
from datetime import timedelta
from typing import Any, ClassVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pipeworks.inputs import RunInput
    from pipeworks.progress import RunProgress
    from pipeworks.streams import StreamSpec, SyncRequest
    from tests.example.activities import ExampleActivities
    from workflows.base import PipelineWorkflow
    from workflows.fanout import fan_out

PIPELINE = "example"


class ExampleSyncInput(RunInput):
    WORKFLOW: ClassVar[str] = "ExampleSyncWorkflow"
    PIPELINE: ClassVar[str] = PIPELINE
    stations: list[str]
    concurrency: int = 2

    @property
    def workflow_id(self) -> str:
        return "example-sync-" + "-".join(self.stations)


@workflow.defn(name="ExampleSyncWorkflow")
class ExampleSyncWorkflow(PipelineWorkflow):
    UNDO_TABLES = ["example.readings"]

    @workflow.init
    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__()
        self.progress = RunProgress.new(workflow.info().workflow_id, PIPELINE, ["readings"],
                                        workflow.now())

    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, Any]:
        request = self.validated(ExampleSyncInput, params)
        stage = self.progress.stage("readings")
        stage.total, stage.status = len(request.stations), "running"
        def work() -> Coroutine[Any, Any, None]:
            return fan_out(request.stations, request.concurrency, self._station,
                           stopping=lambda: self.stopping, is_cancellation=self.is_cancellation)

        return await self.run_saga(request, work, undo_runs=lambda: [workflow.info().run_id],
                                   succeeded=self._succeeded)

    def _succeeded(self) -> str:
        stage = self.progress.stage("readings")
        stage.status, self.progress.status = "done", "completed"
        return f"{stage.records.staged} readings staged"

    async def _station(self, station: str) -> None:
        request = SyncRequest(workflow.info().run_id, station, [
            StreamSpec("readings", "/readings", {"station": station}, pagination="array")])
        synced = await self.run_activity(
            ExampleActivities.sync_streams, request, summary=f"sync station {station}",
            start_to_close=timedelta(minutes=5), heartbeat_timeout=timedelta(seconds=10))
        outcome, stage = synced.streams[0], self.progress.stage("readings")
        stage.records.add(outcome.fetched, outcome.staged, outcome.invalid)
        stage.done += 1
        self.note()
