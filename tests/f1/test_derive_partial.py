"""Graceful degradation: without stints or race control the metrics are inferred and
marked partial; sessions other than races get what makes sense for them."""

from __future__ import annotations

import pytest

from pipeworks.db import Connection
from tests.f1.derive_fixtures import (
    RACE,
    RawSession,
    as_session,
    compare_with_reference,
    derive,
    derived,
    insert_raw,
    synthetic_race,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

NO_DIFFERENCES: dict[str, list[str]] = {"lap_metrics": [], "stint_metrics": [],
                                        "pit_cycles": [], "driver_metrics": []}
PRACTICE = 9002


async def test_without_stints_they_are_inferred_from_pit_stops(db: Connection) -> None:
    await insert_raw(db, synthetic_race())
    await db.execute("DELETE FROM f1.stints WHERE session_key = $1", RACE)
    outcome = await derive(db, RACE)
    assert outcome.partial
    assert outcome.partial_reasons == [
        "no stints for drivers 1, 2, 11, 16, 27, 55: inferred from pit stops and out-laps"]
    tables = await derived(db, RACE)
    laps = tables["lap_metrics"]
    assert {row["completeness"] for row in laps.values()} == {"partial"}
    assert {row["completeness"] for row in tables["stint_metrics"].values()} == {"partial"}
    # VER stopped on 8 and 14: stints 1..8, 9..14, 15..20, tyres taken as new.
    stint_of = {n: laps[1, n]["stint_number"] for n in range(1, 21)}
    assert stint_of == {n: 1 if n <= 8 else 2 if n <= 14 else 3 for n in range(1, 21)}
    assert laps[1, 9]["tyre_age"] == 1 and laps[1, 9]["compound"] is None
    # PER's unflagged out-lap 10 still starts a stint: his in-lap 9 ends one.
    assert laps[11, 10]["is_out_lap"]
    assert tables["stint_metrics"][1, 2]["laps"] == 6
    assert await compare_with_reference(db, RACE) == NO_DIFFERENCES

    # The stints arrive: complete again.
    await insert_raw(db, _only(synthetic_race(), "stints"))
    outcome = await derive(db, RACE)
    assert not outcome.partial
    assert outcome.tables["f1.lap_metrics"].updated == len(laps)
    assert {r["completeness"] for r in await db.fetch("SELECT completeness FROM f1.lap_metrics")
            } == {"complete"}


async def test_without_race_control_neutralised_laps_are_inferred(db: Connection) -> None:
    await insert_raw(db, synthetic_race())
    await db.execute("DELETE FROM f1.race_control WHERE session_key = $1", RACE)
    outcome = await derive(db, RACE)
    assert outcome.partial_reasons == [
        "no race control messages: neutralised laps inferred from lap times"]
    laps = (await derived(db, RACE))["lap_metrics"]
    assert {row["completeness"] for row in laps.values()} == {"partial"}
    # Laps 13 and 14 (+35 s, +30 s behind the safety car) and 17 (the red flag) are
    # more than 1.25 x most drivers' median; lap 12 (+15 s) and the VSC lap 5 are not.
    inferred = {n for (_, n), row in laps.items() if row["neutralised"] == "SC"}
    assert inferred == {13, 14, 17}
    assert {row["neutralised"] for row in laps.values()} == {None, "SC"}
    assert laps[16, 15]["invalid_reason"] == "after_sc"
    assert await compare_with_reference(db, RACE) == NO_DIFFERENCES


async def test_a_practice_session_gets_lap_and_stint_metrics_only(db: Connection) -> None:
    await insert_raw(db, as_session(synthetic_race(), PRACTICE, "Practice 1", "Practice"))
    outcome = await derive(db, PRACTICE)
    assert not outcome.partial
    tables = await derived(db, PRACTICE)
    laps = tables["lap_metrics"]
    assert laps and all(
        row["position"] is None and row["gap_to_leader_s"] is None
        and row["delta_field_s"] is None and row["fuel_kg"] is None for row in laps.values())
    assert laps[1, 2]["fuel_corrected_s"] == await db.fetchval(
        "SELECT lap_duration::numeric FROM f1.laps WHERE session_key = $1"
        " AND driver_number = 1 AND lap_number = 2", PRACTICE)
    assert tables["stint_metrics"]
    assert tables["pit_cycles"] == {} and tables["driver_metrics"] == {}
    assert {r["kind"] for r in await db.fetch(
        "SELECT kind FROM f1.anomalies WHERE session_key = $1", PRACTICE)} <= {
            "degradation", "weather_step"}
    assert await compare_with_reference(db, PRACTICE) == NO_DIFFERENCES


def _only(raw: RawSession, table: str) -> RawSession:
    kept = RawSession()
    kept[table].extend(raw[table])
    return kept
