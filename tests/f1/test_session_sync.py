"""F1SessionSyncWorkflow end to end: the demo upstream over HTTP, a real worker, Temporal
and Postgres. The real 2024 Bahrain race lands exactly, its metrics equal a plain
recomputation from the definitions, and a re-run writes nothing."""

from __future__ import annotations

import itertools
from collections import defaultdict

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devstack.f1 import F1UpstreamServer
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.f1.conftest_upstream import BAHRAIN_QUALIFYING, BAHRAIN_RACE
from tests.f1.derive_fixtures import compare_with_reference
from tests.f1.helpers import stored_laps, sync_session, upstream_laps, xmins

pytestmark = pytest.mark.asyncio(loop_scope="session")

# SOURCE.md of f1-laps-2024: 1,129 lap records in the 2024 Bahrain race.
BAHRAIN_LAPS = 1129


async def test_the_bahrain_race_lands_exactly_and_a_rerun_writes_nothing(
        f1_worker: Worker, f1_settings: Settings, temporal_env: WorkflowEnvironment,
        f1_upstream: F1UpstreamServer, db: Connection) -> None:
    client = temporal_env.client
    # The qualifying session first: the race's starting grid is keyed by it.
    await sync_session(client, f1_settings, BAHRAIN_QUALIFYING)
    result = await sync_session(client, f1_settings, BAHRAIN_RACE)
    assert result["status"] == "completed", result
    assert [s["status"] for s in result["stages"]] == ["done", "done", "done"]

    # Every lap lands, exactly as served.
    laps = await stored_laps(db, BAHRAIN_RACE)
    assert len(laps) == BAHRAIN_LAPS
    assert laps == upstream_laps(f1_upstream, BAHRAIN_RACE)

    # Stints and pit laps agree: each stop's in-lap ends a stint, the next starts after.
    stints: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for r in await db.fetch("SELECT driver_number, stint_number, lap_start, lap_end"
                            " FROM f1.stints WHERE session_key = $1 ORDER BY 1, 2",
                            BAHRAIN_RACE):
        stints[r["driver_number"]].append((r["stint_number"], r["lap_start"], r["lap_end"]))
    pits: dict[int, list[int]] = defaultdict(list)
    for r in await db.fetch("SELECT driver_number, lap_number FROM f1.pit_stops"
                            " WHERE session_key = $1 ORDER BY 1, 2", BAHRAIN_RACE):
        pits[r["driver_number"]].append(r["lap_number"])
    assert len(stints) == 20
    for driver, driver_stints in stints.items():
        assert pits[driver] == [end for _, _, end in driver_stints[:-1]], driver
        for (_, _, end), (_, start, _) in itertools.pairwise(driver_stints):
            assert start == end + 1
    # The upstream's pit stops are f1db's (tests/f1/test_upstream.py): 43 in this race.
    served = {(i["driver_number"], i["lap_number"])
              for i in f1_upstream.dataset.items("pit", BAHRAIN_RACE)}
    assert {(d, lap) for d, laps_ in pits.items() for lap in laps_} == served
    assert len(served) == 43 == sum(len(s) - 1 for s in stints.values())

    # Every derived metric equals a straightforward recomputation from the definitions.
    differences = await compare_with_reference(db, BAHRAIN_RACE)
    assert differences == {name: [] for name in differences}
    assert await db.fetchval("SELECT count(*) FROM f1.stint_metrics WHERE session_key = $1"
                             " AND degradation_s_per_lap IS NOT NULL", BAHRAIN_RACE) > 40
    # The grid of the qualifying session gives positions gained.
    assert await db.fetchval("SELECT count(*) FROM f1.driver_session_metrics"
                             " WHERE session_key = $1 AND positions_gained IS NOT NULL",
                             BAHRAIN_RACE) >= 19
    # Lineage: every raw row names the load that wrote it, and that load its run.
    orphans = await db.fetchval(
        "SELECT count(*) FROM f1.laps l LEFT JOIN pipeline.loads lo USING (load_id)"
        " LEFT JOIN pipeline.runs r ON r.run_id = lo.run_id"
        " WHERE l.session_key = $1 AND r.workflow_id IS DISTINCT FROM 'f1-session-' || $1",
        BAHRAIN_RACE)
    assert orphans == 0
    states = dict(await db.fetch("SELECT endpoint, outcome FROM f1.stream_state"
                                 " WHERE session_key = $1", BAHRAIN_RACE))
    assert states["laps"] == "ok" and "starting_grid" not in states

    # Re-running changes nothing: not one row written (xmin unchanged).
    before = await xmins(db)
    again = await sync_session(client, f1_settings, BAHRAIN_RACE)
    assert again["status"] == "completed"
    assert await xmins(db) == before
    incremental = await sync_session(client, f1_settings, BAHRAIN_RACE, "incremental")
    assert incremental["status"] == "completed"
    assert await xmins(db) == before
