"""Deploying workflow changes safely: recorded histories cover every workflow type, and
the replay check really fails when a change of the commands a workflow issues is not
behind `workflow.patched` (shown with a change of the circuit breaker's policy, which
decides whether a run pauses on a durable timer).

Record the extra histories used here (a run that paused for an outage, a cancelled run,
a batch) with PIPEWORKS_RECORD_HISTORIES=1; recording never overwrites a history, so
histories of earlier versions stay and keep being replayed (tests/sports/test_replay.py)."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
import temporalio.workflow
from pydantic import SecretStr
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker

from activities.sports import PIPELINE
from devstack.sports.faults import FaultConfig
from devstack.sports.server import UpstreamServer
from pipeworks import registry
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.sports.helpers import (
    a_club_of,
    run_options,
    start_sync,
)
from tests.worker import running_worker
from workers.worker import workflows
from workflows.sports import competitions

HISTORIES = Path(__file__).parent / "histories"
RECORDING = bool(os.environ.get("PIPEWORKS_RECORD_HISTORIES"))
PAUSED = "account_sync_v4_outage_paused.json"   # the breaker opened: paused, resumed


def load(name: str) -> WorkflowHistory:
    recorded = json.loads((HISTORIES / name).read_text())
    return WorkflowHistory.from_json(recorded["workflow_id"], recorded["history"])


def histories() -> dict[str, WorkflowHistory]:
    return {path.name: load(path.name) for path in sorted(HISTORIES.glob("*.json"))}


def workflow_type(history: WorkflowHistory) -> str:
    started = history.events[0].workflow_execution_started_event_attributes
    return started.workflow_type.name


def patch_markers(history: WorkflowHistory) -> set[str]:
    """Patch ids recorded in a history (`workflow.patched` returned True there)."""
    found = set()
    for event in history.events:
        if event.HasField("marker_recorded_event_attributes"):
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == "core_patch":
                payload = marker.details["patch-data"].payloads[0]
                found.add(json.loads(payload.data)["id"])
    return found


def timers(history: WorkflowHistory) -> int:
    return sum(e.HasField("timer_started_event_attributes") for e in history.events)


def test_every_workflow_type_has_recorded_histories() -> None:
    recorded = {workflow_type(h) for h in histories().values()}
    # This pipeline's workflows; every other pipeline records its own (tests/<it>/histories).
    for defn in registry.get(PIPELINE).workflows:
        # The name given to @workflow.defn (the SDK keeps it on a private class).
        name = temporalio.workflow._Definition.must_from_class(defn).name
        assert name in recorded, f"no recorded history of {name}: record one"


def test_the_recorded_outage_paused_on_a_durable_timer() -> None:
    assert timers(load(PAUSED)) >= 1
    assert not patch_markers(load(PAUSED)), "no development-time patch is left"


async def replay(history: WorkflowHistory) -> BaseException | None:
    """Replays on the current code; returns the replay failure, if any."""
    replayer = Replayer(workflows=workflows(), workflow_runner=UnsandboxedWorkflowRunner())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    return result.replay_failure


async def test_a_change_without_a_patch_gate_fails_the_replay_check(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What `workflow.patched` is for: a run that never pauses (a breaker with no outage
    budget) issues other commands than the recorded run that paused, and replay says so."""
    assert await replay(load(PAUSED)) is None, "it must replay on the current code"
    monkeypatch.setattr(competitions, "breaker_policy",
                        lambda budget: competitions.BreakerPolicy(budget_seconds=0))
    failure = await replay(load(PAUSED))
    assert isinstance(failure, temporalio.workflow.NondeterminismError), failure


# -- recording (PIPEWORKS_RECORD_HISTORIES=1) ----------------------------------------


def save(name: str, workflow_id: str, history: WorkflowHistory) -> None:
    path = HISTORIES / name
    if path.exists():
        return  # histories of earlier code are what the replay check is for
    path.write_text(json.dumps({"workflow_id": workflow_id,
                                "history": history.to_json_dict()}, indent=1))


@pytest.mark.skipif(not RECORDING, reason="records histories only when asked to")
async def test_record_a_run_that_paused_for_an_outage(
    skipping_env: WorkflowEnvironment, settings: Settings, db: Connection,
    upstream: UpstreamServer,
) -> None:
    first = upstream.dataset.expected_competitions("A1")[0]["id"]
    upstream.faults.set(path_status={f"/v1/competitions/{first}/games": 503},
                        path_fail_count=30)
    async with running_worker(settings, skipping_env.client):
        handle = await start_sync(skipping_env.client, settings, org_kind="association",
                                  org_id="A1")
        assert (await handle.result())["status"] == "completed"
        history = await handle.fetch_history()
    assert timers(history) == 1
    save(PAUSED, handle.id, history)


@pytest.mark.skipif(not RECORDING, reason="records histories only when asked to")
async def test_record_a_cancelled_run_and_a_batch(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    upstream.faults.set(FaultConfig(hold_after=12))
    handle: WorkflowHandle[Any, Any] = await start_sync(
        temporal_env.client, settings, org_kind="association", org_id="A1", page_size=3)
    deadline = asyncio.get_running_loop().time() + 30
    while upstream.faults.held == 0:  # stands still at the gate: no result races the signal
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)
    await handle.signal("cancel", {"reason": "recording a cancelled run"})
    upstream.faults.clear()
    with pytest.raises(Exception):  # noqa: B017 - it ends as a Cancelled failure
        await handle.result()
    save("account_sync_v4_cancelled.json", handle.id, await handle.fetch_history())

    club = a_club_of(upstream.dataset, "A2")
    await db.executemany(
        "INSERT INTO sports.accounts (id, kind, org_id, name) VALUES ($1, $2, $3, $4)",
        [(1, "association", "A1", "One"), (10, "club", club, "A club")])
    batch = await temporal_env.client.start_workflow(
        "BatchSyncWorkflow", {**run_options(settings), "kind": "all", "max_concurrent": 2},
        id=f"sports-sync-batch-all-{uuid.uuid4().hex[:6]}", task_queue=settings.task_queue)
    assert (await batch.result())["status"] == "completed"
    save("batch_sync_v4_completed.json", batch.id, await batch.fetch_history())


@pytest.mark.skipif(not RECORDING, reason="records histories only when asked to")
async def test_record_runs_with_search_attributes_and_an_alert(
    temporal_env: WorkflowEnvironment, settings: Settings, db: Connection,
    upstream: UpstreamServer,
) -> None:
    """Runs as the starters start them, with search attributes and an alert: their
    upserts and alert activities must replay on later code."""
    from starters.client import start_run
    from workflows.sports.inputs import AccountSyncInput, BatchSyncInput

    alerting = settings.model_copy(
        update={"alert_webhook_url": SecretStr("http://127.0.0.1:9/hook")})
    last = upstream.dataset.expected_competitions("A1")[-1]["id"]
    upstream.faults.set(path_status={f"/v1/competitions/{last}/games": 404})
    async with running_worker(alerting, temporal_env.client):
        failing = await start_run(temporal_env.client, settings, AccountSyncInput.model_validate(
            {**run_options(settings), "org_kind": "association", "org_id": "A1"}))
        with pytest.raises(Exception):  # noqa: B017 - it fails, rolls back and alerts
            await failing.handle.result()
        save("account_sync_v4_rolled_back_alerted.json", failing.handle.id,
             await failing.handle.fetch_history())
        upstream.faults.clear()
        await db.executemany(
            "INSERT INTO sports.accounts (id, kind, org_id, name) VALUES ($1, $2, $3, $4)",
            [(1, "association", "A1", "One"), (2, "association", "A2", "Two")])
        batch = await start_run(temporal_env.client, settings, BatchSyncInput.model_validate(
            {**run_options(settings), "kind": "association"}))
        assert (await batch.handle.result())["status"] == "completed"
        save("batch_sync_v4_search_attributes.json", batch.handle.id,
             await batch.handle.fetch_history())
        child = temporal_env.client.get_workflow_handle("sports-sync-account-1")
        save("account_sync_v4_search_attributes.json", child.id, await child.fetch_history())
