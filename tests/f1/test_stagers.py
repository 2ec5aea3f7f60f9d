"""The F1 stagers against real Postgres: validation with dead letters naming the field,
type normalisation, lineage, full-sync deletes and the per-stream state with its
watermark, all in the stage's one transaction."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from activities.f1.activities import stager_for
from activities.f1.plans import SessionHeader, session_streams
from pipeworks.db import Connection
from pipeworks.landing import begin_load, finish_load, land_page
from pipeworks.staging import StageOutcome, stage_load
from pipeworks.streams import StreamSpec

pytestmark = pytest.mark.asyncio(loop_scope="session")

SESSION = 9472
MEETING = 1229


async def stage(db: Connection, entity: str, items: list[Any], *, full: bool = True,
                run: str | None = None, delete: str | None = "session") -> StageOutcome:
    run = run or uuid.uuid4().hex
    load_id = f"{run}/{entity}/session:{SESSION}"
    await begin_load(db, load_id=load_id, run_id=run, entity=entity, scope="x",
                     source_path=f"/v1/{entity}")
    await land_page(db, load_id=load_id, page_no=0, body=json.dumps(items).encode(),
                    item_count=len(items), next_cursor=None)
    await finish_load(db, load_id=load_id, pages=1)
    spec = StreamSpec(entity, f"/v1/{entity}", {}, {"run_id": run, "session_key": str(SESSION),
                                                    "delete": delete}, pagination="array")
    return await stage_load(db, stager_for(spec), load_id=load_id, run_id=run,
                            scope=f"session:{SESSION}", lock_key="f1:test", full_sync=full)


def lap(driver: int, number: int, start: str | None, duration: Any = 95.0,
        **extra: Any) -> dict[str, Any]:
    return {"meeting_key": MEETING, "session_key": SESSION, "driver_number": driver,
            "lap_number": number, "date_start": start, "lap_duration": duration,
            "duration_sector_1": 30.0, "duration_sector_2": 40.0, "duration_sector_3": 25.0,
            "i1_speed": 300, "i2_speed": 280, "st_speed": 310, "is_pit_out_lap": False,
            "segments_sector_1": [2049, 2048], **extra}


async def state(db: Connection, endpoint: str) -> dict[str, Any]:
    row = await db.fetchrow("SELECT outcome, watermark, rows_seen, detail FROM f1.stream_state"
                            " WHERE session_key = $1 AND endpoint = $2", SESSION, endpoint)
    assert row is not None
    return dict(row)


async def test_laps_are_validated_and_their_state_commits_with_them(db: Connection) -> None:
    items = [lap(1, 1, None, None), lap(1, 2, "2024-03-02T15:05:00+00:00"),
             lap(1, 3, "2024-03-02T15:06:35.123000+00:00"),
             lap(1, 0, "2024-03-02T15:06:35+00:00"),             # lap numbers start at 1
             lap(44, 2, "2024-03-02T15:05:01+00:00", "fast")]    # not a number
    outcome = await stage(db, "laps", items)
    assert (outcome.fetched, outcome.staged, outcome.invalid) == (5, 3, 2)
    reasons = sorted(r["reason"] for r in await db.fetch(
        "SELECT reason FROM pipeline.dead_letters WHERE entity = 'laps'"))
    assert reasons[0].startswith("lap_duration:") and reasons[1].startswith("lap_number:")
    row = await db.fetchrow("SELECT * FROM f1.laps WHERE driver_number = 1 AND lap_number = 3")
    assert row is not None and row["lap_duration"] == 95.0 and row["st_speed"] == 310
    assert row["load_id"] == outcome.load_id  # lineage: row -> load -> run
    assert await state(db, "laps") == {
        "outcome": "partial", "watermark": datetime(2024, 3, 2, 15, 6, 35, 123000, UTC),
        "rows_seen": 5, "detail": "2 invalid items dead-lettered"}


async def test_a_re_merge_that_changes_nothing_keeps_the_lineage(db: Connection) -> None:
    items = [lap(1, 1, "2024-03-02T15:03:00+00:00"), lap(1, 2, "2024-03-02T15:04:35+00:00")]
    first = await stage(db, "laps", items)
    xmins = await db.fetch("SELECT xmin::text, load_id FROM f1.laps ORDER BY lap_number")
    again = await stage(db, "laps", items)
    assert again.merge["unchanged"] == 2
    assert await db.fetch("SELECT xmin::text, load_id FROM f1.laps ORDER BY lap_number") == xmins
    assert {r["load_id"] for r in xmins} == {first.load_id}
    changed = await stage(db, "laps", [items[0], {**items[1], "lap_duration": 96.5}])
    assert changed.merge["updated"] == 1
    assert await db.fetchval("SELECT load_id FROM f1.laps WHERE lap_number = 2") == \
        changed.load_id
    assert await db.fetchval("SELECT load_id FROM f1.laps WHERE lap_number = 1") == \
        first.load_id


async def test_the_laps_watermark_stops_before_a_lap_missing_for_everyone(
        db: Connection) -> None:
    items = [lap(d, n, f"2024-03-02T15:{n:02d}:{d:02d}+00:00") for d in (1, 11)
             for n in (1, 2, 4, 5)]  # lap 3 missing for both
    await stage(db, "laps", items)
    watermark = (await state(db, "laps"))["watermark"]
    assert watermark == datetime(2024, 3, 2, 15, 2, 11, tzinfo=UTC)


async def test_empty_is_recorded_and_deletes_nothing(db: Connection) -> None:
    await stage(db, "laps", [lap(1, 1, "2024-03-02T15:03:00+00:00")])
    outcome = await stage(db, "laps", [])
    assert outcome.merge["deleted"] == 0
    assert await db.fetchval("SELECT count(*) FROM f1.laps") == 1
    assert (await state(db, "laps"))["outcome"] == "empty"
    # A full answer that no longer lists the lap deletes it.
    gone = await stage(db, "laps", [lap(1, 2, "2024-03-02T15:04:35+00:00")])
    assert gone.merge["deleted"] == 1


async def test_intervals_normalise_lapped_gaps_and_the_leader(db: Connection) -> None:
    base = {"meeting_key": MEETING, "session_key": SESSION}
    items = [
        {**base, "driver_number": 1, "date": "2024-03-02T15:10:00+00:00",
         "gap_to_leader": None, "interval": None},
        {**base, "driver_number": 2, "date": "2024-03-02T15:10:00+00:00",
         "gap_to_leader": 1.234, "interval": 1.234},
        {**base, "driver_number": 3, "date": "2024-03-02T15:10:00+00:00",
         "gap_to_leader": "+1 LAP", "interval": 0.5},
        {**base, "driver_number": 4, "date": "2024-03-02T15:10:00+00:00",
         "gap_to_leader": "+2 LAPS", "interval": "+1 LAP"},
        {**base, "driver_number": 5, "date": "2024-03-02T15:10:00+00:00",
         "gap_to_leader": "far", "interval": 1.0},
    ]
    outcome = await stage(db, "intervals", items)
    assert outcome.invalid == 1
    rows = {r["driver_number"]: tuple(r)[1:] for r in await db.fetch(
        "SELECT driver_number, gap_to_leader_s, gap_to_leader_laps, interval_s, interval_laps"
        " FROM f1.intervals ORDER BY driver_number")}
    assert rows == {1: (0.0, None, 0.0, None), 2: (1.234, None, 1.234, None),
                    3: (None, 1, 0.5, None), 4: (None, 2, None, 1)}


async def test_session_results_split_qualifying_phases(db: Connection) -> None:
    base = {"meeting_key": MEETING, "session_key": SESSION, "dnf": False, "dns": False,
            "dsq": False}
    items = [
        {**base, "driver_number": 1, "position": 1, "number_of_laps": 18,
         "duration": [90.1, 89.5, 89.179], "gap_to_leader": [0, 0, 0]},
        {**base, "driver_number": 2, "position": 16, "number_of_laps": 8,
         "duration": [91.0, None, None], "gap_to_leader": [0.9, None, None]},
        {**base, "driver_number": 3, "position": None, "number_of_laps": 57,
         "dsq": True, "duration": 5600.1, "gap_to_leader": "+1 LAP"},
        {**base, "driver_number": 4, "position": 2, "number_of_laps": 57,
         "duration": [1, 2], "gap_to_leader": 1.0},   # two phases: not a qualifying array
    ]
    outcome = await stage(db, "session_result", items)
    assert outcome.invalid == 1
    rows = {r["driver_number"]: dict(r) for r in await db.fetch(
        "SELECT * FROM f1.session_results")}
    assert (rows[1]["duration_q3"], rows[1]["duration_s"]) == (89.179, None)
    assert (rows[2]["duration_q2"], rows[2]["gap_to_leader_q1"]) == (None, 0.9)
    assert (rows[3]["duration_s"], rows[3]["gap_to_leader_laps"], rows[3]["position"]) == \
        (5600.1, 1, None)


async def test_race_control_keys_compare_nulls_as_equal(db: Connection) -> None:
    base = {"meeting_key": MEETING, "session_key": SESSION, "category": "SafetyCar",
            "flag": None, "scope": "Track", "sector": None, "driver_number": None,
            "lap_number": 12, "qualifying_phase": None}
    items = [{**base, "date": "2024-03-02T15:30:00+00:00", "message": "SAFETY CAR DEPLOYED"},
             {**base, "date": "2024-03-02T16:30:00+01:00", "message": "SAFETY CAR DEPLOYED "
              "(corrected)"},                      # the same moment and key: latest wins
             {**base, "date": None, "message": "NOTE"}]
    outcome = await stage(db, "race_control", items)
    assert (outcome.staged, outcome.duplicates) == (2, 1)
    messages = [r["message"] for r in await db.fetch(
        "SELECT message FROM f1.race_control ORDER BY date NULLS LAST")]
    assert messages == ["SAFETY CAR DEPLOYED (corrected)", "NOTE"]


async def test_an_item_of_another_session_is_invalid(db: Connection) -> None:
    outcome = await stage(db, "laps", [lap(1, 1, None), {**lap(1, 2, None), "session_key": 1}])
    assert outcome.invalid == 1
    reason = await db.fetchval("SELECT reason FROM pipeline.dead_letters")
    assert reason == f"session_key: 1 is not the session asked for ({SESSION})"


async def test_incremental_plans_start_from_the_merged_rows(db: Connection) -> None:
    header = SessionHeader(SESSION, MEETING, 2024, "Race", "Race",
                           datetime(2024, 3, 2, 15, 0, tzinfo=UTC),
                           datetime(2024, 3, 2, 17, 0, tzinfo=UTC), False)
    items = [lap(d, n, f"2024-03-02T15:{n:02d}:{d:02d}+00:00") for d in (1, 11)
             for n in range(1, 11)]
    await stage(db, "laps", items)
    now = datetime(2024, 3, 2, 15, 30, tzinfo=UTC)
    streams = {s.entity: s for s in await session_streams(db, header, "r", full=False, now=now)}
    # Two laps of overlap: from the earliest start of lap 10 - 2.
    assert streams["laps"].fetch_options["window_start"] == "2024-03-02T15:08:01+00:00"
    assert streams["laps"].fetch_options["window_end"] is None
    assert streams["drivers"].fetch_options == {}       # no timestamp: a full refresh
    assert "window_field" in streams["position"].fetch_options  # big: a date window
    assert "starting_grid" not in streams                # qualifying sessions only
    full = {s.entity: s for s in await session_streams(db, header, "r", full=True, now=now)}
    assert full["laps"].fetch_options == {}
    assert full["position"].stage_options["delete"] == "window"
