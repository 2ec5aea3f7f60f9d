"""A session sync against a misbehaving upstream: faults converge to exact data, a hidden
lap comes back at the next incremental run, invalid items become dead letters, a
permanent failure and a cancel restore every `f1` table exactly."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devstack.f1 import F1FaultConfig, F1UpstreamServer
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.f1.conftest_upstream import BAHRAIN_RACE
from tests.f1.helpers import (
    checksums,
    failure_of,
    start,
    stored_laps,
    sync_session,
    upstream_laps,
    xmins,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_faults_converge_to_exact_data(
        f1_worker: Worker, f1_settings: Settings, temporal_env: WorkflowEnvironment,
        f1_upstream: F1UpstreamServer, db: Connection) -> None:
    f1_upstream.faults.set(F1FaultConfig(
        seed=3, error_rate=0.15, html_rate=0.05, rate_limit_rate=0.1, retry_after_s=1,
        retry_after_omit_rate=0.3, empty_not_found_rate=0.5, order="shuffled"))
    result = await sync_session(temporal_env.client, f1_settings, BAHRAIN_RACE)
    assert result["status"] == "completed", result
    statuses = f1_upstream.stats.snapshot(log=False)["by_status"]
    assert statuses.get("429", 0) > 0 and any(str(s).startswith("5") for s in statuses), \
        statuses
    assert result["errors"]["transient"] > 0
    assert await stored_laps(db, BAHRAIN_RACE) == upstream_laps(f1_upstream, BAHRAIN_RACE)
    # The same session read again without faults writes nothing: the faulty run's data
    # was exact.
    f1_upstream.faults.set(F1FaultConfig())
    before = await xmins(db)
    again = await sync_session(temporal_env.client, f1_settings, BAHRAIN_RACE)
    assert again["status"] == "completed"
    assert await xmins(db) == before


async def test_a_hidden_lap_appears_after_the_next_incremental_run(
        f1_worker: Worker, f1_settings: Settings, temporal_env: WorkflowEnvironment,
        f1_upstream: F1UpstreamServer, db: Connection) -> None:
    rule = f1_upstream.data_faults.hide_lap(BAHRAIN_RACE, 12)
    first = await sync_session(temporal_env.client, f1_settings, BAHRAIN_RACE)
    assert first["status"] == "completed"
    assert first["quality"]["lap_gaps"] == [12]
    assert await db.fetchval("SELECT count(*) FROM f1.laps WHERE session_key = $1"
                             " AND lap_number = 12", BAHRAIN_RACE) == 0
    gap = await db.fetchrow("SELECT passed, severity FROM f1.quality_checks"
                            " WHERE session_key = $1 AND check_id = 'completeness.lap_gaps'",
                            BAHRAIN_RACE)
    assert gap is not None and not gap["passed"]
    # The watermark never passes the gap: the next incremental pull reads lap 12 again.
    f1_upstream.data_faults.reveal(rule)
    second = await sync_session(temporal_env.client, f1_settings, BAHRAIN_RACE, "incremental")
    assert second["status"] == "completed"
    assert second["quality"]["lap_gaps"] == []
    assert await stored_laps(db, BAHRAIN_RACE) == upstream_laps(f1_upstream, BAHRAIN_RACE)
    # The metrics were recomputed with it.
    assert await db.fetchval("SELECT count(*) FROM f1.lap_metrics WHERE session_key = $1"
                             " AND lap_number = 12", BAHRAIN_RACE) == 20


async def test_invalid_items_become_dead_letters_and_the_rest_lands(
        f1_worker: Worker, f1_settings: Settings, temporal_env: WorkflowEnvironment,
        f1_upstream: F1UpstreamServer, db: Connection) -> None:
    for endpoint, count in (("laps", 3), ("position", 2)):
        example = f1_upstream.dataset.items(endpoint, BAHRAIN_RACE)[5]
        f1_upstream.data_faults.inject_invalid(endpoint, BAHRAIN_RACE, example=example,
                                               count=count, seed=4, requests=1)
    result = await sync_session(temporal_env.client, f1_settings, BAHRAIN_RACE)
    assert result["status"] == "completed"
    assert result["records"]["invalid"] == 5 and result["errors"]["data"] == 5
    letters = await db.fetch("SELECT entity, reason FROM pipeline.dead_letters ORDER BY entity")
    assert sorted(r["entity"] for r in letters) == ["laps"] * 3 + ["position"] * 2
    fields = {"driver_number", "lap_number", "date_start", "lap_duration", "position", "date",
              "is_pit_out_lap", "session_key", "meeting_key", "item"}
    for letter in letters:
        assert letter["reason"].split(":")[0].split(".")[0] in fields, letter["reason"]
    assert await stored_laps(db, BAHRAIN_RACE) == upstream_laps(f1_upstream, BAHRAIN_RACE)
    states = dict(await db.fetch("SELECT endpoint, outcome FROM f1.stream_state"
                                 " WHERE session_key = $1", BAHRAIN_RACE))
    assert states["laps"] == "partial" and states["position"] == "partial"
    assert states["drivers"] == "ok"


async def test_a_permanent_failure_restores_every_table(
        f1_worker: Worker, f1_settings: Settings, temporal_env: WorkflowEnvironment,
        f1_upstream: F1UpstreamServer, db: Connection) -> None:
    await sync_session(temporal_env.client, f1_settings, BAHRAIN_RACE)
    before = await checksums(db)
    # A correction of an old lap (it would be written), then the overtakes refused.
    f1_upstream.dataset.correct("laps", BAHRAIN_RACE,
                                {"driver_number": 1, "lap_number": 20}, {"lap_duration": 99.9})
    f1_upstream.faults.set(F1FaultConfig(path_status={"/v1/overtakes": 403}))
    handle = await start(temporal_env.client, f1_settings, "F1SessionSyncWorkflow",
                         {"session_key": BAHRAIN_RACE, "mode": "full"},
                         f"f1-session-{BAHRAIN_RACE}")
    failure = await failure_of(handle)
    assert "403" in str(failure) or "403" in str(failure.__cause__)
    progress = await handle.query("progress")
    assert progress["status"] == "failed" and progress["rolled_back"]
    assert progress["errors"]["permanent"] >= 1
    assert await checksums(db) == before
    failed = await db.fetchval("SELECT count(*) FROM f1.stream_state WHERE session_key = $1"
                               " AND outcome = 'failed'", BAHRAIN_RACE)
    assert failed >= 10


async def test_cancel_stops_and_undoes(
        f1_worker: Worker, f1_settings: Settings, temporal_env: WorkflowEnvironment,
        f1_upstream: F1UpstreamServer, db: Connection) -> None:
    before = await checksums(db)
    # Every request from the 6th on waits: the run is mid-fetch when it is cancelled.
    f1_upstream.faults.set(F1FaultConfig(hold_after=6))
    handle = await start(temporal_env.client, f1_settings, "F1SessionSyncWorkflow",
                         {"session_key": BAHRAIN_RACE, "mode": "full"},
                         f"f1-session-{BAHRAIN_RACE}")
    for _ in range(200):
        if f1_upstream.faults.held:
            break
        await asyncio.sleep(0.05)
    await handle.signal("cancel", {"reason": "test"})
    f1_upstream.faults.set(F1FaultConfig())  # let the held requests go
    await failure_of(handle)
    progress = await handle.query("progress")
    assert progress["status"] == "cancelled" and progress["rolled_back"]
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
    assert await checksums(db) == before
