"""The F1 dashboard's data (starters/f1/web/data.py) against real Postgres: the generated
race with a known truth synced end to end (demo upstream, worker, Temporal), then read
back as the session page and the sessions list would show it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devstack.f1 import F1UpstreamServer, GeneratedRace
from devstack.postgres import EmbeddedPostgres
from pipeworks.db import Connection, create_pool
from pipeworks.settings import Settings
from starters.f1.report import session_report, session_report_on
from starters.f1.web.data import (
    colour,
    fitted_line,
    neutralised_ranges,
    session_page,
    sessions_list,
)
from tests.f1.conftest_upstream import TRUTH_CYCLES, TRUTH_RACE, TRUTH_SAFETY_CAR
from tests.f1.helpers import sync_session


@pytest_asyncio.fixture(loop_scope="session")
async def pool(postgres: EmbeddedPostgres, db: Connection) -> AsyncIterator[asyncpg.Pool]:
    """A pool as `pipeworks serve` opens it (after `db` emptied the tables)."""
    opened = await create_pool(postgres.dsn, max_size=2)
    yield opened
    await opened.close()


def least_squares(points: list[tuple[float, float]]) -> tuple[float, float]:
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    slope = (sum((x - mean_x) * (y - mean_y) for x, y in points)
             / sum((x - mean_x) ** 2 for x, _ in points))
    return slope, mean_y - slope * mean_x


async def test_the_truth_race_as_the_session_page_shows_it(
        f1_worker: Worker, f1_settings: Settings, temporal_env: WorkflowEnvironment,
        f1_upstream: F1UpstreamServer, f1_truth_race: GeneratedRace, db: Connection,
        pool: asyncpg.Pool, postgres: EmbeddedPostgres) -> None:
    result = await sync_session(temporal_env.client, f1_settings, TRUTH_RACE)
    assert result["status"] == "completed", result
    page = await session_page(pool, TRUTH_RACE)
    assert page is not None
    # JSON as it is: no Decimal, no datetime left for a default= to guess.
    assert json.loads(json.dumps(page)) == page
    session = page["session"]
    assert session["session_key"] == TRUTH_RACE and session["session_name"] == "Race"
    assert datetime.fromisoformat(session["date_start"]) == await db.fetchval(
        "SELECT date_start FROM f1.sessions WHERE session_key = $1", TRUTH_RACE)

    # Every driver's laps, as f1.laps holds them, in lap order; his acronym and colour.
    laps = await db.fetch("SELECT driver_number, lap_number, lap_duration FROM f1.laps"
                          " WHERE session_key = $1", TRUTH_RACE)
    by_driver = {d["driver_number"]: d for d in page["drivers"]}
    assert Counter(r["driver_number"] for r in laps) == {
        n: len(d["laps"]) for n, d in by_driver.items()}
    assert {(r["driver_number"], r["lap_number"], r["lap_duration"]) for r in laps} == {
        (n, lap["lap"], lap["time_s"]) for n, d in by_driver.items() for lap in d["laps"]}
    for d in page["drivers"]:
        assert [lap["lap"] for lap in d["laps"]] == sorted(lap["lap"] for lap in d["laps"])
    drivers = await db.fetch("SELECT driver_number, name_acronym, team_colour FROM f1.drivers"
                             " WHERE session_key = $1", TRUTH_RACE)
    for r in drivers:
        assert by_driver[r["driver_number"]]["acronym"] == r["name_acronym"]
        assert by_driver[r["driver_number"]]["team_colour"] == colour(r["team_colour"])
    assert all(d["team_colour"] and d["team_colour"].startswith("#")
               for d in page["drivers"])
    # The legend reads like the result: classified drivers by position.
    positions = [d["position"] for d in page["drivers"] if d["position"] is not None]
    assert positions == sorted(positions) and positions

    # Pit laps: each stop's lap is a pit-in lap, the lap after it a pit-out lap.
    stops = {(r["driver_number"], r["lap_number"]) for r in await db.fetch(
        "SELECT driver_number, lap_number FROM f1.pit_stops WHERE session_key = $1",
        TRUTH_RACE)}
    laps_of = {n: {lap["lap"] for lap in d["laps"]} for n, d in by_driver.items()}
    pit_in = {(n, lap["lap"]) for n, d in by_driver.items() for lap in d["laps"]
              if lap["pit_in"]}
    pit_out = {(n, lap["lap"]) for n, d in by_driver.items() for lap in d["laps"]
               if lap["pit_out"]}
    assert pit_in == stops and stops
    assert {(n, lap + 1) for n, lap in stops if lap + 1 in laps_of[n]} <= pit_out
    for cycle in TRUTH_CYCLES:
        assert (cycle.first, cycle.first_lap) in pit_in

    # The one safety car, laps 38-41 of the leader, though most cars' lap 37 (and a
    # lapped car's 36) overlaps it too: laps count by the leader.
    assert page["neutralised"] == [
        {"kind": "SC", "from_lap": TRUTH_SAFETY_CAR[0], "to_lap": TRUTH_SAFETY_CAR[1]}]
    labelled = await db.fetchval("SELECT min(lap_number) FROM f1.lap_metrics"
                                 " WHERE session_key = $1 AND neutralised = 'SC'", TRUTH_RACE)
    assert labelled < TRUTH_SAFETY_CAR[0]  # the stretch the leader's laps avoid

    # Degradation: the points are exactly the pairs the fit used, so a least-squares
    # fit over them gives back the stored slope and intercept; the drawn line's ends
    # are intercept + slope x age at the points' outermost ages.
    stints = {(s["driver_number"], s["stint_number"]): s for s in page["stints"]}
    assert len(stints) == await db.fetchval(
        "SELECT count(*) FROM f1.stint_metrics WHERE session_key = $1", TRUTH_RACE)
    fitted = 0
    for s in stints.values():
        assert len(s["points"]) == s["valid_laps"], s
        if s["degradation_s_per_lap"] is None:
            assert s["line"] is None
            continue
        slope, intercept = s["degradation_s_per_lap"], s["intercept_s"]
        ages = [p["tyre_age"] for p in s["points"]]
        assert s["line"] == [{"tyre_age": min(ages), "s": intercept + slope * min(ages)},
                             {"tyre_age": max(ages), "s": intercept + slope * max(ages)}]
        ls_slope, ls_intercept = least_squares(
            [(p["tyre_age"], p["fuel_corrected_s"]) for p in s["points"]])
        assert ls_slope == pytest.approx(slope, abs=1e-5), s
        assert ls_intercept == pytest.approx(intercept, abs=1e-4), s
        fitted += 1
    assert fitted >= 20
    truth = {(t.driver_number, t.stint_number): t for t in f1_truth_race.truth.stints}
    for key, t in truth.items():
        if t.fitted_slope_s_per_lap is not None:
            assert stints[key]["degradation_s_per_lap"] == pytest.approx(
                t.fitted_slope_s_per_lap, abs=1e-5)

    # Pit cycles as the report lists them, the planned ones among them.
    cycles = {(c["earlier_driver"], c["later_driver"], c["earlier_lap"]): c
              for c in page["pit_cycles"]}
    for plan in TRUTH_CYCLES:
        got = cycles[(plan.first, plan.second, plan.first_lap)]
        assert (got["later_lap"], got["kind"], got["succeeded"]) == (
            plan.second_lap, plan.kind, plan.succeeds)
        assert isinstance(got["gain_s"], float)

    # Failed checks: the latest result of each check only.
    checks_total = await db.fetchval("SELECT count(DISTINCT check_id) FROM f1.quality_checks"
                                     " WHERE session_key = $1", TRUTH_RACE)
    assert page["checks_total"] == checks_total > 0
    assert page["failed_checks"] == []
    await db.executemany(
        "INSERT INTO f1.quality_checks (session_key, check_id, severity, passed, detail,"
        " run_id, checked_at) VALUES ($1, $2, $3, $4, $5, 'test', $6)",
        [(TRUTH_RACE, "consistency.sector_sums", "warn", False, {"laps": [[1, 7]]},
          datetime(2030, 1, 1, tzinfo=UTC)),
         (TRUTH_RACE, "completeness.laps", "error", False, {"missing": 3},
          datetime(2030, 1, 1, tzinfo=UTC)),
         (TRUTH_RACE, "completeness.laps", "error", True, {},
          datetime(2030, 1, 2, tzinfo=UTC))])
    page = await session_page(pool, TRUTH_RACE)
    assert page is not None
    assert page["failed_checks"] == [{
        "check_id": "consistency.sector_sums", "severity": "warn", "passed": False,
        "detail": {"laps": [[1, 7]]}, "run_id": "test",
        "checked_at": "2030-01-01T00:00:00+00:00"}]

    # The API's document on a pooled connection is the CLI's, byte for byte.
    async with pool.acquire() as conn:
        pooled = await session_report_on(conn, TRUTH_RACE)
    assert json.dumps(pooled, ensure_ascii=False, default=str) == json.dumps(
        await session_report(postgres.dsn, TRUTH_RACE), ensure_ascii=False, default=str)

    # The list: sessions with laps only (the calendar's others are not), newest first.
    for extra, name, days in ((1, "Later, no laps", 1), (2, "Later, one lap", 2)):
        await db.execute(
            "INSERT INTO f1.sessions (session_key, meeting_key, year, session_name,"
            " session_type, date_start, date_end) SELECT $2, meeting_key, year, $3,"
            " 'Practice', date_start + $4 * interval '1 day', date_end + $4 * interval '1 day'"
            " FROM f1.sessions WHERE session_key = $1", TRUTH_RACE, extra, name, days)
    await db.execute("INSERT INTO f1.laps (session_key, driver_number, lap_number, meeting_key,"
                     " is_pit_out_lap) SELECT 2, 1, 1, meeting_key, true FROM f1.sessions"
                     " WHERE session_key = $1", TRUTH_RACE)
    listed = await sessions_list(pool)
    assert [s["session_key"] for s in listed] == [2, TRUTH_RACE]
    race = listed[1]
    assert race["laps"] == len(laps) and race["failed_checks"] == 1
    assert race["session_name"] == "Race" and race["meeting_name"]
    assert race["date_start"] == session["date_start"]
    assert listed[0]["failed_checks"] == 0 and listed[0]["laps"] == 1
    # Name and team fields the upstream left null come from the meeting's other session.
    await db.execute("INSERT INTO f1.drivers (session_key, driver_number, meeting_key)"
                     " SELECT 1, driver_number, meeting_key FROM f1.drivers"
                     " WHERE session_key = $1", TRUTH_RACE)
    practice = await session_page(pool, 1)
    assert practice is not None
    assert {(d["driver_number"], d["acronym"], d["team_colour"], d["laps"] == [])
            for d in practice["drivers"]} == {
        (n, d["acronym"], d["team_colour"], True) for n, d in by_driver.items()}
    # A session with laps but no metrics yet still has a page.
    bare = await session_page(pool, 2)
    assert bare is not None and bare["stints"] == [] and bare["neutralised"] == []
    assert [(d["acronym"], len(d["laps"])) for d in bare["drivers"]] == [("#1", 1)]


async def test_an_unknown_session_has_no_page(pool: asyncpg.Pool) -> None:
    assert await session_page(pool, 123456) is None
    assert await sessions_list(pool) == []


def test_neutralised_ranges_follow_the_leader_else_the_majority() -> None:
    labels: dict[int, list[str | None]] = {
        9: ["VSC", None, None],          # a minority: not a period
        10: ["SC", "SC", None],
        11: ["SC", "SC", "SC"],
        12: ["RED", "RED", "SC"],        # a new kind: a new range
        13: ["SC", "VSC", None, None],   # half: SC over VSC on a tie
        15: ["VSC", "VSC"],              # lap 14 between: two ranges
    }
    assert neutralised_ranges(labels) == [
        {"kind": "SC", "from_lap": 10, "to_lap": 11},
        {"kind": "RED", "from_lap": 12, "to_lap": 12},
        {"kind": "SC", "from_lap": 13, "to_lap": 13},
        {"kind": "VSC", "from_lap": 15, "to_lap": 15},
    ]
    assert neutralised_ranges({}) == []
    # Where the leader's lap is known, its label decides, against the majority too.
    leaders: dict[int, str | None] = {10: None, 11: "SC", 9: "VSC"}
    assert neutralised_ranges(labels, leaders)[:2] == [
        {"kind": "VSC", "from_lap": 9, "to_lap": 9},
        {"kind": "SC", "from_lap": 11, "to_lap": 11}]


def test_colours_and_lines() -> None:
    assert colour("3671c6") == "#3671C6"
    assert colour("#FF8000") == "#FF8000"
    assert colour(None) is None and colour("blue") is None
    line: list[dict[str, Any]] | None = fitted_line(0.05, 90.0, [3, 7, 5])
    assert line is not None and [p["tyre_age"] for p in line] == [3, 7]
    assert [p["s"] for p in line] == pytest.approx([90.15, 90.35])
    assert fitted_line(None, 90.0, [1, 2]) is None and fitted_line(0.1, 90.0, []) is None
