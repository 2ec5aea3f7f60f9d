"""A generated race with a known truth (degradation slopes, planned undercuts and
overcuts) recovered by the pipeline; a season's calendar and its sessions as children;
a live session replayed at high speed, polled with continue-as-new, ending equal to a
full sync with bounded histories."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devstack.f1 import F1FaultConfig, F1UpstreamServer, GeneratedRace
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.f1.conftest_upstream import (
    BAHRAIN_MEETING,
    BAHRAIN_QUALIFYING,
    BAHRAIN_RACE,
    TRUTH_RACE,
    TRUTH_SAFETY_CAR,
)
from tests.f1.helpers import (
    checksums,
    start,
    stored_laps,
    sync_session,
    upstream_laps,
    xmins,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_generated_race_gives_back_its_truth(
        f1_worker: Worker, f1_settings: Settings, temporal_env: WorkflowEnvironment,
        f1_upstream: F1UpstreamServer, f1_truth_race: GeneratedRace, db: Connection) -> None:
    result = await sync_session(temporal_env.client, f1_settings, TRUTH_RACE)
    assert result["status"] == "completed", result
    truth = f1_truth_race.truth
    stints = {(r["driver_number"], r["stint_number"]): r for r in await db.fetch(
        "SELECT * FROM f1.stint_metrics WHERE session_key = $1", TRUTH_RACE)}
    checked = 0
    for stint in truth.stints:
        got = stints[(stint.driver_number, stint.stint_number)]
        assert got["valid_laps"] == len(stint.valid_laps), stint
        if stint.fitted_slope_s_per_lap is None:
            assert got["degradation_s_per_lap"] is None
            continue
        # The fit over the served values, exactly; the planned slope within 5 sigma.
        assert float(got["degradation_s_per_lap"]) == pytest.approx(
            stint.fitted_slope_s_per_lap, abs=1e-5), stint
        assert stint.tolerance_s_per_lap is not None
        assert abs(float(got["degradation_s_per_lap"]) - stint.slope_s_per_lap) <= \
            stint.tolerance_s_per_lap, stint
        checked += 1
    assert checked >= 20
    cycles = {(r["earlier_driver"], r["later_driver"], r["earlier_lap"]): r
              for r in await db.fetch("SELECT * FROM f1.pit_cycles WHERE session_key = $1",
                                      TRUTH_RACE)}
    for planned in truth.cycles:
        plan = planned.cycle
        got = cycles[(plan.first, plan.second, plan.first_lap)]
        assert (got["later_lap"], got["kind"], got["succeeded"]) == (
            plan.second_lap, plan.kind, planned.succeeded), planned
        assert float(got["gain_s"]) == pytest.approx(planned.gain_s, abs=1e-3)
    neutralised = {r["lap_number"] for r in await db.fetch(
        "SELECT DISTINCT lap_number FROM f1.lap_metrics WHERE session_key = $1"
        " AND neutralised = 'SC'", TRUTH_RACE)}
    # The safety car of laps 38-41: laps overlapping it, a lapped car's lap 36 too.
    sc_from, sc_to = TRUTH_SAFETY_CAR
    assert neutralised and sc_from - 2 <= min(neutralised) and max(neutralised) <= sc_to + 1


async def test_a_season_syncs_its_calendar_then_its_sessions(
        f1_worker: Worker, f1_settings: Settings, temporal_env: WorkflowEnvironment,
        f1_upstream: F1UpstreamServer, db: Connection) -> None:
    handle = await start(temporal_env.client, f1_settings, "F1SeasonSyncWorkflow", {
        "year": 2024, "meeting_keys": [BAHRAIN_MEETING],
        "session_names": ["Qualifying", "Race"], "mode": "full",
        "max_concurrent_sessions": 2}, "f1-season-2024")
    result = await handle.result()
    assert result["status"] == "completed", result
    stages = {s["name"]: s for s in result["stages"]}
    assert stages["calendar"]["status"] == "done"
    assert (stages["sessions"]["total"], stages["sessions"]["done"]) == (2, 2)
    # The whole calendar of the test dataset, but only the selected sessions' timing.
    assert await db.fetchval("SELECT count(*) FROM f1.meetings") >= 2
    assert await db.fetchval("SELECT count(*) FROM f1.sessions WHERE year = 2024") >= 10
    timed = {r["session_key"] for r in await db.fetch("SELECT DISTINCT session_key FROM f1.laps")}
    assert timed == {BAHRAIN_QUALIFYING, BAHRAIN_RACE}
    assert await stored_laps(db, BAHRAIN_RACE) == upstream_laps(f1_upstream, BAHRAIN_RACE)
    runs = await db.fetch("SELECT workflow_id, status FROM pipeline.runs ORDER BY started_at")
    assert {(r["workflow_id"], r["status"]) for r in runs} == {
        ("f1-season-2024", "completed"), (f"f1-session-{BAHRAIN_QUALIFYING}", "completed"),
        (f"f1-session-{BAHRAIN_RACE}", "completed")}


async def history_of(handle: WorkflowHandle[object, object]) -> list[HistoryEvent]:
    return list((await handle.fetch_history()).events)


async def test_a_live_session_replayed_fast_ends_equal_to_a_full_sync(
        f1_worker: Worker, f1_settings: Settings, temporal_env: WorkflowEnvironment,
        f1_upstream: F1UpstreamServer, db: Connection) -> None:
    client = temporal_env.client
    # The race from its start, 600 times as fast: its 95 minutes in about 10 s.
    f1_upstream.replay(BAHRAIN_RACE, speed=600)
    handle = await start(client, f1_settings, "F1LiveSessionWorkflow", {
        "session_key": BAHRAIN_RACE, "poll_seconds": 3, "polls_per_run": 2},
        f"f1-live-{BAHRAIN_RACE}")
    result = await handle.result()
    assert result["status"] == "completed", result
    assert set(result["lag_seconds"]) >= {"laps", "position", "intervals", "weather"}
    stages = {s["name"]: s for s in result["stages"]}
    assert stages["poll"]["done"] >= 3 and stages["final"]["status"] == "done"
    # It continued as new every 2 polls: short histories, one record of the whole run.
    histories = []
    async for execution in client.list_workflows(f"WorkflowId = 'f1-live-{BAHRAIN_RACE}'"):
        histories.append(await history_of(
            client.get_workflow_handle(execution.id, run_id=execution.run_id)))
    assert len(histories) >= 2 and max(len(h) for h in histories) < 200
    # Polls start every 3 s: each wait is 3 s less what its poll took.
    timers = [e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
              for h in histories for e in h
              if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED]
    assert timers and all(timedelta(seconds=0.5) <= t < timedelta(seconds=3) for t in timers)
    last = await handle.fetch_history()
    assert last.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    live_runs = await db.fetch("SELECT status FROM pipeline.runs WHERE workflow_id = $1",
                               f"f1-live-{BAHRAIN_RACE}")
    assert [r["status"] for r in live_runs] == ["completed"]
    # The polls had almost everything: the final full sync deleted nothing and added
    # only what the upstream published after the last poll (the results, the last laps'
    # final values, and what appeared while that poll ran: at 600x, half a second of
    # a loaded machine is 5 minutes of race): under 5% of the rows.
    final = await client.get_workflow_handle(f"f1-session-{BAHRAIN_RACE}").result()
    merge = final["merge"]
    assert merge["deleted"] == 0, merge
    assert merge["inserted"] + merge["updated"] < 0.05 * merge["unchanged"], merge
    assert await stored_laps(db, BAHRAIN_RACE) == upstream_laps(f1_upstream, BAHRAIN_RACE)
    # And it equals a full sync: another one writes nothing.
    before = await xmins(db)
    await sync_session(client, f1_settings, BAHRAIN_RACE)
    assert await xmins(db) == before


async def test_temporal_cancel_during_a_live_poll_stops_and_undoes(
        f1_worker: Worker, f1_settings: Settings, temporal_env: WorkflowEnvironment,
        f1_upstream: F1UpstreamServer, db: Connection) -> None:
    """Temporal's own cancel (`temporal workflow cancel`, the Web UI's button) reaching a
    live run mid-poll ends it cancelled and undone, as the `cancel` signal does."""
    before = await checksums(db)
    f1_upstream.replay(BAHRAIN_RACE, speed=60)
    handle = await start(temporal_env.client, f1_settings, "F1LiveSessionWorkflow", {
        "session_key": BAHRAIN_RACE, "poll_seconds": 3}, f"f1-live-{BAHRAIN_RACE}")
    # After a first poll has landed rows, hold every request: the next poll is in flight.
    for _ in range(400):
        stages = {s["name"]: s for s in (await handle.query("progress"))["stages"]}
        if stages["poll"]["done"] >= 1 and stages["poll"]["records"]["staged"] > 0:
            break
        await asyncio.sleep(0.05)
    f1_upstream.faults.set(F1FaultConfig(hold_after=0))
    for _ in range(400):
        if f1_upstream.faults.held:
            break
        await asyncio.sleep(0.05)
    assert f1_upstream.faults.held, await handle.query("progress")
    await handle.cancel()
    await asyncio.sleep(0.5)
    f1_upstream.faults.set(F1FaultConfig())  # let the held requests go
    with pytest.raises(WorkflowFailureError) as failure:
        await asyncio.wait_for(handle.result(), timeout=60)
    assert isinstance(failure.value.cause, CancelledError)
    progress = await handle.query("progress")
    assert progress["status"] == "cancelled" and progress["rolled_back"], progress
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    assert await checksums(db) == before
    runs = await db.fetch("SELECT status FROM pipeline.runs WHERE workflow_id = $1",
                          f"f1-live-{BAHRAIN_RACE}")
    assert [r["status"] for r in runs] == ["cancelled"]
