"""What a person sees of runs in the Web UI and through `temporal workflow list`: search
attributes that follow the run's stage, and activity summaries that say what they do."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devstack.sports.server import UpstreamServer
from pipeworks import registry
from pipeworks.db import Connection
from pipeworks.settings import Settings
from starters.client import start_run
from tests.sports.helpers import run_options
from workflows.sports.inputs import AccountSyncInput, BatchSyncInput


async def listed(client: Client, query: str, expect: int = 1,
                 timeout: float = 20.0) -> list[Any]:
    """Visibility is eventually consistent: poll until the query lists `expect` runs."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = [w async for w in client.list_workflows(query)]
        if len(found) >= expect or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.2)


def attributes(execution: Any) -> dict[str, Any]:
    """The attributes a run has set (other pipelines' keys are registered but unset)."""
    values = execution.typed_search_attributes
    return {key.name: values.get(key) for key in registry.search_attribute_keys()
            if values.get(key) is not None}


async def start(client: Client, settings: Settings, **fields: Any) -> WorkflowHandle[Any, Any]:
    model = BatchSyncInput if "kind" in fields else AccountSyncInput
    started = await start_run(client, settings, model.model_validate(
        {**run_options(settings), **fields}))
    assert not started.attached
    return started.handle


async def test_a_running_sync_is_found_by_organisation_and_follows_its_stage(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    client = temporal_env.client
    upstream.faults.set(hold_after=1)  # the run stays in its competitions stage
    handle = await start(client, settings, org_kind="association", org_id="A1")
    mine = f"TaskQueue = '{settings.task_queue}'"
    running = await listed(client, f"{mine} AND ExecutionStatus = 'Running' AND "
                                    "Pipeline = 'sports_sync' AND OrgKind = 'association' "
                                    "AND OrgId = 'A1' AND Stage = 'competitions'")
    assert [w.id for w in running] == [handle.id]
    upstream.faults.reset()
    result = await handle.result()
    assert result["status"] == "completed"
    done = await listed(client, f"{mine} AND OrgId = 'A1' AND Stage = 'completed'")
    assert attributes(done[0]) == {"Pipeline": "sports_sync", "OrgKind": "association",
                                   "OrgId": "A1", "Stage": "completed"}


async def test_an_account_sync_learns_its_organisation_and_a_batch_tags_its_children(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    await db.executemany(
        "INSERT INTO sports.accounts (id, kind, org_id, name) VALUES ($1, $2, $3, $4)",
        [(1, "association", "A1", "One"), (2, "association", "A2", "Two")])
    client = temporal_env.client
    batch = await start(client, settings, kind="association")
    assert (await batch.result())["status"] == "completed"
    mine = f"TaskQueue = '{settings.task_queue}'"
    children = await listed(client, f"{mine} AND Pipeline = 'sports_sync'", expect=2)
    assert sorted((attributes(c)["OrgId"], attributes(c)["Stage"]) for c in children) == [
        ("A1", "completed"), ("A2", "completed")]
    (parent,) = await listed(client, f"{mine} AND Pipeline = 'sports_sync_batch'")
    assert attributes(parent)["OrgKind"] == "association"


async def test_failed_runs_are_listed_by_stage(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    competition = upstream.dataset.expected_competitions("A1")[0]["id"]
    upstream.faults.set(path_status={f"/v1/competitions/{competition}/games": 404})
    handle = await start(temporal_env.client, settings, org_kind="association", org_id="A1")
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    (failed,) = await listed(temporal_env.client,
                             f"TaskQueue = '{settings.task_queue}' AND Stage = 'failed'")
    assert failed.id == handle.id


async def test_activity_summaries_name_what_they_work_on(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    handle = await start(temporal_env.client, settings, org_kind="association", org_id="A1")
    await handle.result()
    converter = temporal_env.client.data_converter
    summaries = []
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            summary = await converter.decode([event.user_metadata.summary])
            summaries.append(summary[0])
    competitions = upstream.dataset.expected_competitions("A1")
    assert competitions
    # One activity fetches and stages a competition's teams and games (`sync-streams`).
    for name in (c["name"] for c in competitions):
        assert f"sync teams and games of competition {name}" in summaries
    association = upstream.dataset.associations["A1"].name
    assert f"sync competitions of association {association}" in summaries
