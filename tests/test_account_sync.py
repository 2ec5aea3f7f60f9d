"""AccountSyncWorkflow end to end: real Temporal, Postgres and HTTP upstream."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devstack.upstream.server import UpstreamServer
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.helpers import assert_tables_equal, checksums, expected_association, start_sync


async def sync(client: Client, settings: Settings, **fields: Any) -> dict[str, Any]:
    handle = await start_sync(client, settings, **fields)
    result: dict[str, Any] = await handle.result()
    return result


async def test_full_sync_equals_upstream_and_rerun_changes_nothing(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    result = await sync(temporal_env.client, settings, org_kind="association", org_id="A1")
    assert result["status"] == "completed", result
    assert result["percent"] == 100.0
    expected = expected_association(upstream.dataset, "A1")
    await assert_tables_equal(db, expected)
    assert result["records"]["staged"] == sum(len(rows) for rows in expected.values())

    before = await checksums(db)
    again = await sync(temporal_env.client, settings, org_kind="association", org_id="A1")
    assert again["status"] == "completed"
    assert await checksums(db) == before
    runs = await db.fetch("SELECT status, stats FROM pipeline.runs ORDER BY started_at")
    assert [r["status"] for r in runs] == ["completed", "completed"]
    merge = runs[1]["stats"]["merge"]
    assert merge["inserted"] == merge["updated"] == merge["deleted"] == 0, merge
    assert merge["unchanged"] == result["records"]["staged"]
