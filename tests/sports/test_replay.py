"""Workflow code changes must not break runs in flight: histories recorded from an
earlier version replay against the current code (a change of the commands a
workflow issues needs `workflow.patched`). Record new ones with
PIPEWORKS_RECORD_HISTORIES=1 pytest tests/sports/test_replay.py."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from devstack.sports.server import UpstreamServer
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.sports.helpers import start_sync
from workers.worker import workflows

HISTORIES = Path(__file__).parent / "histories"
RECORDING = bool(os.environ.get("PIPEWORKS_RECORD_HISTORIES"))
# Names the histories recorded by this version of the code. v4: the code consolidated
# at the pipeline seam, before the first release (no development-time patches left).
VERSION = "v4"


async def test_recorded_histories_replay_on_the_current_code() -> None:
    files = sorted(HISTORIES.glob("*.json"))
    assert files, "no recorded histories"
    replayer = Replayer(workflows=workflows())
    for path in files:
        recorded = json.loads(path.read_text())
        history = WorkflowHistory.from_json(recorded["workflow_id"], recorded["history"])
        await replayer.replay_workflow(history)  # raises on nondeterminism


@pytest.mark.skipif(not RECORDING, reason="records histories only when asked to")
async def test_record_histories(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    scenarios: dict[str, dict[str, Any]] = {
        "completed": {},
        "rolled_back": {"fault": "404"},
        "isolated": {"fault": "404", "on_failure": "isolate"},
        "invalid_items": {"invalid": True},
    }
    HISTORIES.mkdir(exist_ok=True)
    for name, scenario in scenarios.items():
        upstream.faults.reset()
        competitions = upstream.dataset.expected_competitions("A1")
        if scenario.get("fault"):
            upstream.faults.set(path_status={
                f"/v1/competitions/{competitions[-1]['id']}/games": 404})
        if scenario.get("invalid"):
            upstream.dataset.inject_invalid(competitions[0]["id"], "bad_timestamp")
        handle = await start_sync(temporal_env.client, settings, org_kind="association",
                                  org_id="A1", on_failure=scenario.get("on_failure",
                                                                      "rollback"))
        with contextlib.suppress(Exception):
            await handle.result()
        history = await handle.fetch_history()
        path = HISTORIES / f"account_sync_{VERSION}_{name}.json"
        if path.exists():  # histories of earlier code stay: they are what replay checks
            continue
        path.write_text(json.dumps(
            {"workflow_id": handle.id, "history": history.to_json_dict()}, indent=1))
