"""Quality checks pass on clean data (synthetic and the real 2024 Bahrain GP), find the
defects planted in it, report upstream lap gaps, and are recorded append-only."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from activities.f1.quality import MAX_ITEMS, QualityOutcome, run_quality_checks
from activities.f1.quality_checks import CheckResult
from pipeworks.db import Connection
from tests.f1.derive_fixtures import (
    BAHRAIN_RACE,
    RACE,
    SKIP_REASON,
    T0,
    bahrain_available,
    bahrain_race,
    insert_raw,
    synthetic_race,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

CHECK_IDS = {"completeness.laps", "completeness.lap_gaps", "completeness.stints",
             "completeness.pit_stops", "completeness.weather", "completeness.results",
             "consistency.sector_sums", "consistency.lap_starts", "consistency.positions",
             "consistency.result_positions"}
NOW = T0 + timedelta(hours=1)


async def check(db: Connection, session_key: int = RACE, *, live: bool = False,
                run_id: str = "quality-test") -> QualityOutcome:
    return await run_quality_checks(db, session_key, run_id=run_id, live=live, now=NOW)


def by_id(outcome: QualityOutcome) -> dict[str, CheckResult]:
    return {c.check_id: c for c in outcome.results}


async def test_clean_data_passes_every_check(db: Connection) -> None:
    await insert_raw(db, synthetic_race(missing_lap=False))
    outcome = await check(db)
    assert {c.check_id for c in outcome.results} == CHECK_IDS
    assert outcome.failed == [] and outcome.passed and outcome.gaps == []
    rows = await db.fetch("SELECT check_id, passed, run_id, checked_at FROM f1.quality_checks")
    assert len(rows) == len(CHECK_IDS)
    assert {(r["passed"], r["run_id"], r["checked_at"]) for r in rows} == {
        (True, "quality-test", NOW)}


@pytest.mark.skipif(not bahrain_available(), reason=SKIP_REASON)
async def test_bahrain_2024_passes_every_check(db: Connection) -> None:
    await insert_raw(db, bahrain_race())
    outcome = await check(db, BAHRAIN_RACE)
    assert outcome.failed == []


async def test_planted_defects_are_found(db: Connection) -> None:
    await insert_raw(db, synthetic_race())   # PER (11) has no lap 6
    # Lap 7 missing for every driver: an upstream gap.
    await db.execute("DELETE FROM f1.laps WHERE session_key = $1 AND lap_number = 7", RACE)
    # A sector time off by 0.2 s.
    await db.execute("UPDATE f1.laps SET duration_sector_2 = duration_sector_2 + 0.2"
                     " WHERE session_key = $1 AND driver_number = 16 AND lap_number = 9", RACE)
    # LEC's start of lap 12 two seconds late.
    await db.execute("UPDATE f1.laps SET date_start = date_start + interval '2 s'"
                     " WHERE session_key = $1 AND driver_number = 16 AND lap_number = 12", RACE)
    # SAI also P1 at the end of VER's lap 3 (a position event at the same moment).
    at = await db.fetchval(
        "SELECT date_start + lap_duration * interval '1 second' FROM f1.laps"
        " WHERE session_key = $1 AND driver_number = 1 AND lap_number = 3", RACE)
    await db.execute("INSERT INTO f1.positions (session_key, meeting_key, driver_number, date,"
                     " position) VALUES ($1, 900, 55, $2::timestamptz - interval '1 ms', 1)",
                     RACE, at)
    # Two classified P2s, no P3; a pit row without a stint change; a weather gap.
    await db.execute("UPDATE f1.session_results SET position = 2 WHERE session_key = $1"
                     " AND position = 3", RACE)
    await db.execute("DELETE FROM f1.pit_stops WHERE session_key = $1 AND driver_number = 2"
                     " AND lap_number = 15", RACE)
    await db.execute("DELETE FROM f1.weather WHERE session_key = $1 AND date BETWEEN $2 AND $3",
                     RACE, T0 + timedelta(minutes=10), T0 + timedelta(minutes=17))

    outcome = await check(db)
    checks = by_id(outcome)
    assert outcome.gaps == [7]
    assert checks["completeness.lap_gaps"].detail == {"lap_numbers": [7]}
    assert {"driver_number": 11, "laps": [6, 7]} in checks["completeness.laps"].detail[
        "missing"]
    duration = await db.fetchval("SELECT lap_duration FROM f1.laps WHERE session_key = $1"
                                 " AND driver_number = 16 AND lap_number = 9", RACE)
    assert checks["consistency.sector_sums"].detail["laps"] == [
        {"driver_number": 16, "lap_number": 9, "lap_duration": duration,
         "sector_sum": pytest.approx(duration + 0.2, abs=0.0015)}]
    starts = checks["consistency.lap_starts"].detail["laps"]
    assert [(s["driver_number"], s["lap_number"]) for s in starts] == [(16, 11), (16, 12)]
    duplicates = checks["consistency.positions"].detail["duplicates"]
    assert {"lap_number": 3, "position": 1, "drivers": [1, 55]} in duplicates
    assert checks["consistency.result_positions"].detail == {
        "duplicates": [2], "missing": [3], "classified": 5}
    assert checks["completeness.pit_stops"].detail["mismatches"] == [
        {"problem": "no_pit_row", "driver_number": 2, "lap_number": 15}]
    gaps = checks["completeness.weather"].detail["gaps"]
    assert len(gaps) == 1 and gaps[0]["seconds"] == 540
    assert set(outcome.failed) == CHECK_IDS - {"completeness.stints", "completeness.results"}
    assert not outcome.passed


async def test_details_are_capped(db: Connection) -> None:
    await insert_raw(db, synthetic_race())
    await db.execute("UPDATE f1.laps SET duration_sector_1 = duration_sector_1 + 1"
                     " WHERE session_key = $1", RACE)
    outcome = await check(db)
    count = by_id(outcome)["consistency.sector_sums"].detail["count"]
    assert count > MAX_ITEMS
    stored = await db.fetchval(
        "SELECT detail FROM f1.quality_checks WHERE check_id = 'consistency.sector_sums'")
    assert len(stored["laps"]) == MAX_ITEMS and stored["truncated"] and stored["count"] == count


async def test_timeliness_only_when_live(db: Connection) -> None:
    await insert_raw(db, synthetic_race())
    newest_lap = await db.fetchval("SELECT max(date_start) FROM f1.laps")

    async def live_at(moment: datetime) -> dict[str, CheckResult]:
        return by_id(await run_quality_checks(db, RACE, run_id="live", live=True, now=moment))

    fresh = await live_at(newest_lap + timedelta(seconds=30))
    assert fresh["timeliness.laps"].passed and fresh["timeliness.weather"].passed
    assert not fresh["timeliness.intervals"].passed    # never fetched
    assert fresh["timeliness.race_control"].severity == "info"
    assert fresh["completeness.results"].severity == "info"
    stale = await live_at(newest_lap + timedelta(hours=1))
    assert not stale["timeliness.laps"].passed
    assert stale["timeliness.laps"].detail["age_s"] == 3600
    assert not [c for c in (await check(db)).results if c.check_id.startswith("timeliness.")]
    # Append-only: every run added its rows.
    assert await db.fetchval("SELECT count(*) FROM f1.quality_checks") == 3 * len(CHECK_IDS) + 12


async def test_positions_are_compared_at_one_instant_per_lap(db: Connection) -> None:
    await insert_raw(db, synthetic_race(missing_lap=False))
    # HUL (27) retires half a second after completing lap 10: upstream moves him to the
    # back and every car behind him up one place at that moment. Each driver's position
    # at his own end of lap 10 would show HUL and the car behind him on the same place;
    # at the leader's completion of each lap the positions are 1..k, each once.
    hul_done = await db.fetchval(
        "SELECT date_start + lap_duration * interval '1 second' FROM f1.laps"
        " WHERE session_key = $1 AND driver_number = 27 AND lap_number = 10", RACE)
    retired = hul_done + timedelta(seconds=0.5)
    standing = {r["driver_number"]: r["position"] for r in await db.fetch(
        "SELECT DISTINCT ON (driver_number) driver_number, position FROM f1.positions"
        " WHERE session_key = $1 AND date <= $2 ORDER BY driver_number, date DESC",
        RACE, retired)}
    hul = standing[27]
    behind = {d: place for d, place in standing.items() if place > hul}
    assert behind   # HUL is not last: the retirement moves someone up
    moves = [(d, place - 1) for d, place in behind.items()] + [(27, len(standing))]
    await db.executemany(
        "INSERT INTO f1.positions (session_key, meeting_key, driver_number, date, position)"
        " VALUES ($1, 900, $2, $3, $4)", [(RACE, d, retired, place) for d, place in moves])
    # The car right behind HUL completes lap 10 after the retirement, on HUL's place.
    follower = next(d for d, place in behind.items() if place == hul + 1)
    follower_done = await db.fetchval(
        "SELECT date_start + lap_duration * interval '1 second' FROM f1.laps"
        " WHERE session_key = $1 AND driver_number = $2 AND lap_number = 10", RACE, follower)
    assert follower_done > retired
    checks = by_id(await check(db))
    assert checks["consistency.positions"].passed, checks["consistency.positions"].detail
    assert checks["consistency.positions"].severity == "error"
