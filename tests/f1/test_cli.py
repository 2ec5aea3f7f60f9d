"""`pipeworks f1 ...` as a user runs it: subprocesses against the real stack (an
in-process worker, Temporal, Postgres, the demo upstream)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.f1.settings import F1Settings
from devstack.f1 import F1UpstreamServer
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.commands import Commands
from tests.f1.conftest_upstream import BAHRAIN_RACE

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def commands(f1_settings: Settings, tmp_path: Path) -> AsyncIterator[Commands]:
    running = Commands.for_settings(f1_settings, tmp_path, {
        "PIPEWORKS_F1_API_URL": str(f1_settings.of(F1Settings).f1_api_url)})
    yield running
    await running.close()


async def test_sync_a_session_then_report_it(
        f1_worker: Worker, commands: Commands, temporal_env: WorkflowEnvironment,
        f1_upstream: F1UpstreamServer, db: Connection) -> None:
    synced = await commands("f1", "sync-session", str(BAHRAIN_RACE), "--full", "--wait",
                            "--json")
    assert synced.code == 0, synced
    assert synced.json()["status"] == "completed"
    again = await commands("f1", "sync-session", str(BAHRAIN_RACE), "--json")
    assert again.code == 0 and again.json()["workflow_id"] == f"f1-session-{BAHRAIN_RACE}"

    report = await commands("f1", "report", str(BAHRAIN_RACE))
    assert report.code == 0, report
    for title in ("Stints: degradation", "Pace deltas", "Pit cycles", "Failed quality checks"):
        assert title in report.out, report.out
    assert "VER" in report.out and "HARD" in report.out
    document = (await commands("f1", "report", str(BAHRAIN_RACE), "--json")).json()
    assert len(document["stints"]) == 63 and len(document["pace"]) == 20
    assert document["session"]["session_name"] == "Race"

    # A lap's lineage: which load and run wrote it, and its changes with before-images.
    f1_upstream.dataset.correct("laps", BAHRAIN_RACE, {"driver_number": 1, "lap_number": 17},
                                {"lap_duration": 100.5})
    # An old row's correction is read by a full sync (incremental pulls start at the end).
    assert (await commands("f1", "sync-session", str(BAHRAIN_RACE), "--wait")).code == 0
    assert await db.fetchval("SELECT lap_duration FROM f1.laps WHERE session_key = $1"
                             " AND driver_number = 1 AND lap_number = 17", BAHRAIN_RACE) == 99.896
    assert (await commands("f1", "sync-session", str(BAHRAIN_RACE), "--full", "--wait")
            ).code == 0
    lineage = (await commands("f1", "report", str(BAHRAIN_RACE), "--lap", "1:17",
                              "--json")).json()["lap"]
    assert lineage["current"]["lap_duration"] == 100.5
    assert [c["op"] for c in lineage["changes"]] == ["insert", "update"]
    assert lineage["changes"][1]["before"]["lap_duration"] == 99.896
    shown = await commands("f1", "report", str(BAHRAIN_RACE), "--lap", "1:17")
    assert "last written by load" in shown.out and "lap_duration 99.896" in shown.out

    missing = await commands("f1", "report", "1")
    assert missing.code == 2 and "not in f1.sessions" in missing.err
    bad = await commands("f1", "report", str(BAHRAIN_RACE), "--lap", "x")
    assert bad.code == 2 and "--lap" in bad.err


async def test_metric_versions_roll_forward_and_back(
        f1_worker: Worker, commands: Commands, db: Connection) -> None:
    listed = await commands("f1", "metrics", "list", "--json")
    assert [v["version"] for v in listed.json()] == ["v1"]
    added = await commands("f1", "metrics", "add", "v2", "--set", "pace_window=1.05",
                           "--note", "stricter", "--activate")
    assert added.code == 0, added
    assert await db.fetchval("SELECT version FROM f1.metric_params WHERE active") == "v2"
    back = await commands("f1", "metrics", "activate", "v1")
    assert back.code == 0 and "v1 is active" in back.out
    assert await db.fetchval("SELECT version FROM f1.metric_params WHERE active") == "v1"
    wrong = await commands("f1", "metrics", "add", "v3", "--set", "no_such_param=1")
    assert wrong.code == 2 and "no_such_param" in wrong.err
    unknown = await commands("f1", "metrics", "activate", "v9")
    assert unknown.code == 2


async def test_inputs_are_checked_before_anything_is_sent(commands: Commands) -> None:
    short = await commands("f1", "live", str(BAHRAIN_RACE), "--poll-seconds", "1")
    assert short.code == 2 and "--poll-seconds" in short.err
    year = await commands("f1", "sync", "--year", "1800")
    assert year.code == 2 and "--year" in year.err
    listed = await commands("pipelines")
    assert "f1" in listed.out and "F1SeasonSyncWorkflow" in listed.out
    assert "PIPEWORKS_F1_API_URL" in listed.out


async def test_a_daily_calendar_refresh_on_a_schedule(
        f1_worker: Worker, commands: Commands, temporal_env: WorkflowEnvironment) -> None:
    created = await commands("schedule", "create", "f1-calendar", "--cron", "0 1 * * *",
                             "--", "f1", "sync", "--year", "2024", "--calendar-only")
    assert created.code == 0, created
    try:
        described = await commands("schedule", "list")
        assert "f1 sync --year 2024 --calendar-only" in described.out, described.out
    finally:
        await temporal_env.client.get_schedule_handle("f1-calendar").delete()
