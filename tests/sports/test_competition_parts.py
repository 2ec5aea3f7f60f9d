"""Large organisations are synced in parts, each a `CompetitionsSyncWorkflow` child, so
that no history grows without bound. Here with a tiny part size (2 competitions of A1's
3): the rows, the progress document, rollback, isolate and cancel are as without
parts. Record the parts' histories with PIPEWORKS_RECORD_HISTORIES=1."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devstack.sports.server import UpstreamServer
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.sports.helpers import (
    assert_tables_equal,
    checksums,
    expected_association,
    failure_of,
    start_sync,
)
from tests.sports.test_account_sync import (
    competition_ids,
    prepopulate_then_change_upstream,
    slow_sync_over_a_changed_database,
    wait_for,
)

PARTS = {"competitions_per_workflow": 2}
HISTORIES = Path(__file__).parent / "histories"


async def record(name: str, handle: WorkflowHandle[Any, Any]) -> None:
    """With PIPEWORKS_RECORD_HISTORIES=1: the run's history, for tests/test_replay.py."""
    path = HISTORIES / name
    if os.environ.get("PIPEWORKS_RECORD_HISTORIES") and not path.exists():
        path.write_text(json.dumps({"workflow_id": handle.id, "history": (
            await handle.fetch_history()).to_json_dict()}, indent=1))


async def child_ids(handle: WorkflowHandle[Any, Any]) -> list[str]:
    return [e.child_workflow_execution_started_event_attributes.workflow_execution.workflow_id
            async for e in handle.fetch_history_events()
            if e.HasField("child_workflow_execution_started_event_attributes")]


async def test_parts_sync_the_same_rows_and_progress(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    handle = await start_sync(temporal_env.client, settings, org_kind="association",
                              org_id="A1", competition_concurrency=2, **PARTS)
    result = await handle.result()
    assert result["status"] == "completed", result
    expected = expected_association(upstream.dataset, "A1")
    await assert_tables_equal(db, expected)
    teams, games = result["stages"][1], result["stages"][2]
    assert teams["total"] == games["total"] == teams["done"] == games["done"] == 3
    assert teams["records"]["staged"] == len(expected["sports.teams"])
    assert games["records"]["staged"] == len(expected["sports.games"])
    assert result["records"]["fetched"] == result["records"]["staged"] == sum(
        len(rows) for rows in expected.values())
    children = await child_ids(handle)
    assert len(children) == 2
    for child in children:
        part = await temporal_env.client.get_workflow_handle(child).result()
        assert part["final"] and part["stages"]["games"]["done"] in (1, 2)

    await record("account_sync_v4_parts.json", handle)
    await record("competitions_sync_v4_part.json",
                 temporal_env.client.get_workflow_handle(children[0]))


async def test_a_failed_part_rolls_back_every_part(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    await prepopulate_then_change_upstream(temporal_env.client, settings, upstream)
    before = await checksums(db)
    last = competition_ids(upstream)[-1]  # in the second part
    upstream.faults.set(path_status={f"/v1/competitions/{last}/games": 404})
    handle = await start_sync(temporal_env.client, settings, org_kind="association",
                              org_id="A1", competition_concurrency=1, **PARTS)
    cause = await failure_of(handle)
    assert isinstance(cause, ApplicationError) and cause.type == "PermanentError", cause
    assert f"competition {last}" in cause.message
    progress = await handle.query("progress")
    assert progress["status"] == "failed" and progress["rolled_back"] is True
    assert progress["errors"]["permanent"] == 1
    assert progress["stages"][2]["done"] == 2  # the first part's, undone with the rest
    assert await checksums(db) == before
    await record("account_sync_v4_parts_rolled_back.json", handle)


async def test_isolate_in_a_part_undoes_only_that_competition(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    failing = competition_ids(upstream)[2]
    upstream.faults.set(path_status={f"/v1/competitions/{failing}/games": 404})
    handle = await start_sync(temporal_env.client, settings, org_kind="association",
                              org_id="A1", on_failure="isolate", **PARTS)
    result = await handle.result()
    assert result["status"] == "completed_with_errors", result
    assert result["stages"][2]["failed"] == 1 and result["stages"][2]["done"] == 2
    assert failing in result["message"]
    expected = expected_association(upstream.dataset, "A1")
    for table in ("sports.teams", "sports.games"):
        rows = await db.fetch(f"SELECT competition_id FROM {table}")
        assert failing not in {r["competition_id"] for r in rows}, table
        assert len(rows) == len([r for r in expected[table] if r[1] != failing]), table


async def test_cancel_during_a_part_restores_the_tables(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    handle, before = await slow_sync_over_a_changed_database(
        temporal_env.client, settings, upstream, db, competition_concurrency=1, **PARTS)
    await wait_for(handle, lambda p: p["stages"][2]["done"] >= 1)  # reported by part 1
    await handle.signal("cancel", {"reason": "test says stop"})
    cause = await failure_of(handle)
    assert isinstance(cause, ApplicationError) and cause.type == "Cancelled"
    progress = await handle.query("progress")
    assert progress["status"] == "cancelled" and progress["rolled_back"] is True
    assert await checksums(db) == before
    await record("account_sync_v4_parts_cancelled.json", handle)
    children = await child_ids(handle)
    await record("competitions_sync_v4_part_cancelled.json",
                 temporal_env.client.get_workflow_handle(children[-1]))
