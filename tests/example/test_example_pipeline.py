"""The seam's proof: a pipeline of a few files and one registration runs end to end
through the real worker, Temporal and Postgres: fetch, stage, a re-run that changes
nothing, rollback on a permanent failure, and cancel."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from pipeworks import registry
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.example.upstream import ReadingsUpstream
from tests.example.workflow import ExampleSyncInput

READINGS = {
    "S1": [{"station": "S1", "hour": h, "value": 10.0 + h} for h in range(24)],
    "S2": [{"station": "S2", "hour": h, "value": 20.0 + h} for h in range(24)],
}


async def start(client: Client, settings: Settings, *stations: str, concurrency: int = 2
                ) -> WorkflowHandle[Any, Any]:
    request = ExampleSyncInput(stations=list(stations), concurrency=concurrency)
    return await client.start_workflow(
        request.WORKFLOW, request.model_dump(mode="json"),
        id=f"{request.workflow_id}-{uuid.uuid4().hex[:6]}", task_queue=settings.task_queue)


async def rows(db: Connection) -> set[tuple[Any, ...]]:
    return {tuple(r) for r in await db.fetch("SELECT station, hour, value FROM example.readings")}


async def checksum(db: Connection) -> str:
    return str(await db.fetchval(
        "SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '')"
        " FROM example.readings t"))


def expected(*stations: str) -> set[tuple[Any, ...]]:
    return {(r["station"], r["hour"], r["value"]) for s in stations for r in READINGS[s]}


def test_it_is_registered_beside_the_installed_pipelines(
        example_pipeline: registry.Pipeline) -> None:
    names = [p.name for p in registry.installed()]
    assert "example" in names and len(names) >= 2
    assert registry.get("example").workflow_names == ["ExampleSyncWorkflow"]


async def test_fetch_stage_and_a_rerun_that_changes_nothing(
    example_worker: Settings, example_db: Connection, readings_upstream: ReadingsUpstream,
    temporal_env: Any,
) -> None:
    readings_upstream.readings = {**READINGS, "S2": [*READINGS["S2"], {"hour": "bad"}]}
    handle = await start(temporal_env.client, example_worker, "S1", "S2")
    result = await handle.result()
    assert result["status"] == "completed", result
    assert result["pipeline"] == "example"
    assert result["records"] == {"fetched": 49, "staged": 48, "invalid": 1}
    assert await rows(example_db) == expected("S1", "S2")
    dead = await example_db.fetch("SELECT entity, reason FROM pipeline.dead_letters")
    assert [r["entity"] for r in dead] == ["readings"] and "station" in dead[0]["reason"]
    run = await example_db.fetchrow("SELECT pipeline, status FROM pipeline.runs")
    assert tuple(run) == ("example", "completed")

    xmins = await example_db.fetch("SELECT xmin::text FROM example.readings ORDER BY 1")
    again = await (await start(temporal_env.client, example_worker, "S1", "S2")).result()
    assert again["status"] == "completed"
    assert again["records"] == {"fetched": 49, "staged": 48, "invalid": 1}
    assert await example_db.fetch("SELECT xmin::text FROM example.readings ORDER BY 1") == xmins


async def test_a_permanent_failure_rolls_back_exactly(
    example_worker: Settings, example_db: Connection, readings_upstream: ReadingsUpstream,
    temporal_env: Any,
) -> None:
    readings_upstream.readings = READINGS
    assert (await (await start(temporal_env.client, example_worker, "S1")).result()
            )["status"] == "completed"
    before = await checksum(example_db)
    # S1's readings change and are staged; then S3, unknown upstream, fails (a 404 that
    # is not "No results": permanent) and the run undoes S1's changes.
    readings_upstream.readings = {"S1": [{**r, "value": -1.0} for r in READINGS["S1"]]}
    handle = await start(temporal_env.client, example_worker, "S1", "S3", concurrency=1)
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert isinstance(failed.value.cause, ApplicationError)
    assert failed.value.cause.type == "PermanentError"
    progress = await handle.query("progress")
    assert progress["status"] == "failed" and progress["rolled_back"] is True
    assert progress["stages"][0]["done"] == 1  # S1 was staged before S3 failed
    assert await checksum(example_db) == before


async def test_cancel_undoes_what_the_run_changed(
    example_worker: Settings, example_db: Connection, readings_upstream: ReadingsUpstream,
    temporal_env: Any,
) -> None:
    readings_upstream.readings = READINGS
    before = await checksum(example_db)
    readings_upstream.gate.clear()  # requests wait: the run stands still mid-fetch
    handle = await start(temporal_env.client, example_worker, "S1", "S2")
    for _ in range(200):
        if readings_upstream.requests:
            break
        await asyncio.sleep(0.05)
    await handle.signal("cancel", {"reason": "example cancel"})
    readings_upstream.gate.set()
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert isinstance(failed.value.cause, ApplicationError)
    assert failed.value.cause.type == "Cancelled"
    progress = await handle.query("progress")
    assert progress["status"] == "cancelled" and progress["rolled_back"] is True
    assert await checksum(example_db) == before
