"""F1 workflow code changes must not break runs in flight: histories recorded from this
version replay against the current code (a change of the commands a workflow issues
needs `workflow.patched`). Every F1 workflow type has at least one. Record new ones with
PIPEWORKS_RECORD_HISTORIES=1 pytest tests/f1/test_replay.py; recording never overwrites
a history (earlier ones are what replay checks)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest
import temporalio.workflow
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from activities.f1 import PIPELINE
from devstack.f1 import F1FaultConfig, F1UpstreamServer
from pipeworks import registry
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.f1.conftest_upstream import BAHRAIN_MEETING, BAHRAIN_RACE
from tests.f1.helpers import start
from workers.worker import workflows

ASYNC = pytest.mark.asyncio(loop_scope="session")

HISTORIES = Path(__file__).parent / "histories"
RECORDING = bool(os.environ.get("PIPEWORKS_RECORD_HISTORIES"))
VERSION = "v1"


def recorded() -> dict[str, WorkflowHistory]:
    found = {}
    for path in sorted(HISTORIES.glob("*.json")):
        data = json.loads(path.read_text())
        found[path.name] = WorkflowHistory.from_json(data["workflow_id"], data["history"])
    return found


@ASYNC
async def test_recorded_histories_replay_on_the_current_code() -> None:
    histories = recorded()
    assert histories, "no recorded histories"
    replayer = Replayer(workflows=workflows())
    for history in histories.values():
        await replayer.replay_workflow(history)  # raises on nondeterminism


def test_every_f1_workflow_type_has_a_recorded_history() -> None:
    types = {h.events[0].workflow_execution_started_event_attributes.workflow_type.name
             for h in recorded().values()}
    for defn in registry.get(PIPELINE).workflows:
        name = temporalio.workflow._Definition.must_from_class(defn).name
        assert name in types, f"no recorded history of {name}: record one"


async def _save(handle: WorkflowHandle[object, object], name: str) -> None:
    with contextlib.suppress(Exception):
        await handle.result()
    path = HISTORIES / f"{name}_{VERSION}.json"
    if path.exists():
        return
    history = await handle.fetch_history()
    path.write_text(json.dumps({"workflow_id": handle.id, "history": history.to_json_dict()},
                               indent=1))


@ASYNC
@pytest.mark.skipif(not RECORDING, reason="records histories only when asked to")
async def test_record_histories(
        f1_worker: Worker, f1_settings: Settings, temporal_env: WorkflowEnvironment,
        f1_upstream: F1UpstreamServer, db: Connection) -> None:
    client = temporal_env.client
    HISTORIES.mkdir(exist_ok=True)
    # Live first, while nothing of the race is stored: it polls, continues as new, ends.
    f1_upstream.replay(BAHRAIN_RACE, speed=600)
    live = await start(client, f1_settings, "F1LiveSessionWorkflow", {
        "session_key": BAHRAIN_RACE, "poll_seconds": 3, "polls_per_run": 3})
    await _save(live, "live_session_completed")
    async for execution in client.list_workflows(f"WorkflowId = '{live.id}'"):
        if execution.status == WorkflowExecutionStatus.CONTINUED_AS_NEW:
            await _save(client.get_workflow_handle(live.id, run_id=execution.run_id),
                        "live_session_continued")
            break
    f1_upstream.reset()
    session = {"session_key": BAHRAIN_RACE, "mode": "full"}
    await _save(await start(client, f1_settings, "F1SessionSyncWorkflow", session),
                "session_sync_completed")
    f1_upstream.faults.set(F1FaultConfig(path_status={"/v1/overtakes": 403}))
    await _save(await start(client, f1_settings, "F1SessionSyncWorkflow", session),
                "session_sync_rolled_back")
    f1_upstream.faults.set(F1FaultConfig())
    await _save(await start(client, f1_settings, "F1SeasonSyncWorkflow", {
        "year": 2024, "meeting_keys": [BAHRAIN_MEETING], "session_names": ["Race"],
        "mode": "incremental"}), "season_sync_completed")
