"""Anomalies planted in the synthetic race are found, and only they (beside the lapped
car's lap times, which are genuinely far off the field's)."""

from __future__ import annotations

from typing import Any

import pytest

from pipeworks.db import Connection
from tests.f1.derive_fixtures import RACE, derive, insert_raw, synthetic_race

pytestmark = pytest.mark.asyncio(loop_scope="session")

VER, LEC, SAI, SAR = 1, 16, 55, 2


async def anomalies(db: Connection) -> dict[tuple[str, str], dict[str, Any]]:
    rows = await db.fetch("SELECT * FROM f1.anomalies WHERE session_key = $1", RACE)
    return {(r["kind"], r["anomaly_key"]): dict(r) for r in rows}


async def test_a_clean_race_has_only_the_lapped_cars_lap_times(db: Connection) -> None:
    await insert_raw(db, synthetic_race())
    await derive(db, RACE)
    found = await anomalies(db)
    assert found and {kind for kind, _ in found} == {"lap_time"}
    assert {row["driver_number"] for row in found.values()} == {SAR}


async def test_planted_anomalies_are_found(db: Connection) -> None:
    await insert_raw(db, synthetic_race())
    # VER 2.5 s quicker than everyone on lap 3 (a timing glitch; five valid laps there).
    await db.execute("UPDATE f1.laps SET lap_duration = lap_duration - 2.5 WHERE session_key = $1"
                     " AND driver_number = $2 AND lap_number = 3", RACE, VER)
    # SAI, leading, loses 35 s on lap 19 without stopping: first to fourth, and back on
    # lap 20 (whose start is unchanged).
    await db.execute("UPDATE f1.laps SET lap_duration = lap_duration + 35 WHERE session_key = $1"
                     " AND driver_number = $2 AND lap_number = 19", RACE, SAI)
    # A 60 s pit lane among 22 s ones.
    await db.execute("UPDATE f1.pit_stops SET lane_duration = 60 WHERE session_key = $1"
                     " AND driver_number = $2 AND lap_number = 7", RACE, LEC)
    # SAR's second stint (laps 4-15; valid: 6-10) falls off a cliff: +0.8 s a lap. He
    # is last by far: no position changes.
    await db.execute("UPDATE f1.laps SET lap_duration = lap_duration + 0.8 * (lap_number - 4)"
                     " WHERE session_key = $1 AND driver_number = $2"
                     " AND lap_number BETWEEN 5 AND 15", RACE, SAR)
    # One weather row 8 degrees hotter on track.
    await db.execute(
        "UPDATE f1.weather SET track_temperature = track_temperature + 8 WHERE session_key = $1"
        " AND date = (SELECT date FROM f1.weather WHERE session_key = $1 ORDER BY date"
        " OFFSET 20 LIMIT 1)", RACE)
    await derive(db, RACE)
    found = await anomalies(db)

    fast = found["lap_time", "1/3"]
    assert fast["lap_number"] == 3 and fast["detail"]["z"] < -3.5
    assert found["position_jump", "55/19"]["detail"] == {"from": 1, "to": 4}
    assert found["position_jump", "55/20"]["detail"] == {"from": 4, "to": 1}
    assert len([k for k in found if k[0] == "position_jump"]) == 2
    lane = found["pit_lane_time", "16/7"]["detail"]
    assert lane["lane_duration"] == 60 and lane["high"] < 60
    assert not [k for k in found if k[0] == "pit_lane_time" and k[1] != "16/7"]
    cliff = found["degradation", "2/2"]
    assert cliff["lap_number"] == 4 and cliff["detail"]["degradation_s_per_lap"] > 0.5
    assert len([k for k in found if k[0] == "degradation"]) == 1
    steps = [row for (kind, _), row in found.items() if kind == "weather_step"]
    assert len(steps) == 2   # up, then down again
    assert {s["detail"]["track_temperature"][1] - s["detail"]["track_temperature"][0] > 0
            for s in steps} == {True, False}

    # Recomputing finds the same, writing nothing.
    again = await derive(db, RACE)
    assert not again.changed
