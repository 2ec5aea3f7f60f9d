"""Hand-checked expectations for the tricky cases of the definitions (interfaces.md, F1
pipeline, Definitions), on the synthetic race of derive_fixtures.synthetic_race."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from pipeworks.db import Connection
from tests.f1.derive_fixtures import (
    MEETING,
    RACE,
    RawSession,
    compare_with_reference,
    derive,
    derived,
    insert_raw,
    race_control_row,
    synthetic_race,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

VER, LEC, PER, SAI, HUL, SAR = 1, 16, 11, 55, 27, 2
NO_DIFFERENCES = {"lap_metrics": [], "stint_metrics": [], "pit_cycles": [], "driver_metrics": []}


async def race(db: Connection) -> dict[str, dict[Any, dict[str, Any]]]:
    await insert_raw(db, synthetic_race())
    await derive(db, RACE)
    return await derived(db, RACE)


def labels(laps: dict[Any, dict[str, Any]], lap_number: int) -> dict[int, str | None]:
    return {d: row["neutralised"] for (d, n), row in laps.items() if n == lap_number}


async def test_the_safety_car_ends_when_the_leader_completes_the_named_lap(db: Connection
                                                                          ) -> None:
    laps = (await race(db))["lap_metrics"]
    # "Safety Car In This Lap" (any case) names lap 14: the period ends when the leader
    # (VER) completes it, the instant his lap 15 starts. Touching is no overlap.
    assert laps[VER, 14]["position"] == 1
    assert set(labels(laps, 13).values()) == {"SC"}
    assert set(labels(laps, 14).values()) == {"SC"}
    assert set(labels(laps, 15).values()) == {None}
    # Lap 15 follows a lap that overlapped the SC period: not valid for pace (VER's is
    # his out-lap, which comes first; SAR's lap 15 is an in-lap).
    assert {d: laps[d, 15]["invalid_reason"] for d in (VER, LEC, PER, SAI)} == {
        VER: "out_lap", LEC: "after_sc", PER: "after_sc", SAI: "after_sc"}
    assert laps[LEC, 16]["valid_for_pace"]


async def test_vsc_and_sc_phrases_are_told_apart(db: Connection) -> None:
    laps = (await race(db))["lap_metrics"]
    # "VIRTUAL SAFETY CAR DEPLOYED" contains "SAFETY CAR DEPLOYED" but does not start
    # with it: a VSC, and the lap after it is not "after an SC period".
    assert set(labels(laps, 5).values()) == {"VSC"}
    assert laps[LEC, 7]["invalid_reason"] == "in_lap"
    assert laps[SAI, 6]["invalid_reason"] is None and laps[SAI, 7]["invalid_reason"] is None


async def test_any_positive_overlap_neutralises_touching_does_not(db: Connection) -> None:
    laps = (await race(db))["lap_metrics"]
    # The VSC ends 0.4 s into LEC's lap 6: more than an instant (v1: any positive overlap).
    assert laps[LEC, 6]["neutralised"] == "VSC"
    assert laps[LEC, 6]["invalid_reason"] == "neutralised"
    # VER started lap 6 1.459 s before LEC: 1.859 s under the VSC.
    assert laps[LEC, 5]["gap_to_leader_s"] - laps[VER, 5]["gap_to_leader_s"] == Decimal(
        "1.459")
    assert laps[VER, 6]["neutralised"] == "VSC"
    assert laps[VER, 6]["invalid_reason"] == "neutralised"
    # The VSC ending the instant LEC's lap 6 starts: [start, end) intervals that touch
    # do not overlap; his lap 5 is the last one under it.
    await db.execute("UPDATE f1.race_control SET date = date - interval '0.4 s'"
                     " WHERE message = 'VIRTUAL SAFETY CAR ENDING'")
    await derive(db, RACE)
    laps = (await derived(db, RACE))["lap_metrics"]
    assert laps[LEC, 6]["neutralised"] is None and laps[LEC, 6]["valid_for_pace"]
    assert laps[LEC, 5]["neutralised"] == "VSC"
    # One microsecond of overlap is enough.
    await db.execute("UPDATE f1.race_control SET date = date + interval '1 microsecond'"
                     " WHERE message = 'VIRTUAL SAFETY CAR ENDING'")
    await derive(db, RACE)
    laps = (await derived(db, RACE))["lap_metrics"]
    assert laps[LEC, 6]["neutralised"] == "VSC"
    assert await compare_with_reference(db, RACE) == NO_DIFFERENCES


async def add_messages(db: Connection, *rows: tuple[datetime, str, int | None]) -> None:
    raw = RawSession()
    raw["race_control"].extend(
        race_control_row(RACE, MEETING, at, message, category="SafetyCar", lap_number=lap)
        for at, message, lap in rows)
    await insert_raw(db, raw)


async def first_start(db: Connection, lap_number: int) -> datetime:
    at: datetime = await db.fetchval(
        "SELECT min(date_start) FROM f1.laps WHERE session_key = $1 AND lap_number = $2",
        RACE, lap_number)
    return at


async def test_the_named_lap_missing_for_every_driver(db: Connection) -> None:
    await race(db)
    # Lap 14, named by "Safety Car In This Lap", missing for everyone (normal upstream):
    # the period ends at the earliest start of lap 15, the leader's (VER).
    await db.execute("DELETE FROM f1.laps WHERE session_key = $1 AND lap_number = 14", RACE)
    await derive(db, RACE)
    laps = (await derived(db, RACE))["lap_metrics"]
    assert set(labels(laps, 13).values()) == {"SC"}
    assert set(labels(laps, 15).values()) == {None}
    assert set(labels(laps, 16).values()) == {None, "RED"}   # SAR's lap 16: the red flag
    assert await compare_with_reference(db, RACE) == NO_DIFFERENCES
    # Laps 14 and 15 missing: the next TRACK CLEAR message ends it, here the instant the
    # leader starts lap 16.
    await db.execute("DELETE FROM f1.laps WHERE session_key = $1 AND lap_number = 15", RACE)
    await add_messages(db, (await first_start(db, 16), "TRACK CLEAR", None))
    await derive(db, RACE)
    laps = (await derived(db, RACE))["lap_metrics"]
    assert set(labels(laps, 13).values()) == {"SC"}
    assert labels(laps, 16) == {VER: None, LEC: None, PER: None, SAI: None, SAR: "RED"}
    assert set(labels(laps, 18).values()) == {None}
    assert await compare_with_reference(db, RACE) == NO_DIFFERENCES
    # Without the TRACK CLEAR either, the period stays open (a live session).
    await db.execute("DELETE FROM f1.race_control WHERE message = 'TRACK CLEAR'")
    await derive(db, RACE)
    laps = (await derived(db, RACE))["lap_metrics"]
    assert set(labels(laps, 18).values()) == {"SC"}


async def test_an_sc_ends_by_its_own_messages_not_the_next_deployments(db: Connection
                                                                       ) -> None:
    await race(db)
    # An earlier SC on lap 9 whose "IN THIS LAP" message names no lap, and a TRACK CLEAR
    # the instant the leader starts lap 10. The lap-14 message belongs to the SC of lap 12.
    lap_9 = await first_start(db, 9)
    await add_messages(db, (lap_9 + timedelta(seconds=20), "SAFETY CAR DEPLOYED", 9),
                       (lap_9 + timedelta(seconds=40), "SAFETY CAR IN THIS LAP", None),
                       (await first_start(db, 10), "TRACK CLEAR", None))
    await derive(db, RACE)
    laps = (await derived(db, RACE))["lap_metrics"]
    assert set(labels(laps, 9).values()) == {"SC"}
    assert set(labels(laps, 10).values()) == {None}
    # (SAR, lapped, runs his lap 11 under the SC of lap 12.)
    assert labels(laps, 11) == {VER: None, LEC: None, PER: None, SAI: None, HUL: None,
                                SAR: "SC"}
    assert set(labels(laps, 13).values()) == {"SC"}
    assert await compare_with_reference(db, RACE) == NO_DIFFERENCES
    # Without its TRACK CLEAR, the lap-9 SC lasts until the next deployment.
    await db.execute("DELETE FROM f1.race_control WHERE message = 'TRACK CLEAR'")
    await derive(db, RACE)
    laps = (await derived(db, RACE))["lap_metrics"]
    assert set(labels(laps, 10).values()) == {"SC"}
    assert set(labels(laps, 15).values()) == {None}
    assert await compare_with_reference(db, RACE) == NO_DIFFERENCES


async def test_the_previous_lap_without_a_duration_can_overlap_the_sc(db: Connection
                                                                      ) -> None:
    await race(db)
    # LEC's lap 14 (his out-lap, under the SC) has no duration: it is not labelled (the
    # definition's exemption), but it ran until his lap 15 started, under the SC, so his
    # lap 15 follows a lap overlapping an SC period.
    await db.execute("UPDATE f1.laps SET lap_duration = NULL WHERE session_key = $1"
                     " AND driver_number = $2 AND lap_number = 14", RACE, LEC)
    await derive(db, RACE)
    laps = (await derived(db, RACE))["lap_metrics"]
    assert laps[LEC, 14]["neutralised"] is None
    assert laps[LEC, 14]["invalid_reason"] == "out_lap"
    assert laps[LEC, 15]["invalid_reason"] == "after_sc"
    assert laps[LEC, 16]["valid_for_pace"]
    assert await compare_with_reference(db, RACE) == NO_DIFFERENCES


async def test_red_flag_infringement_is_not_a_red_flag(db: Connection) -> None:
    laps = (await race(db))["lap_metrics"]
    assert set(labels(laps, 17).values()) == {"RED"}
    # "RED FLAG INFRINGEMENT - CAR 2 (SAR) - NOTED" on lap 19 starts no period.
    assert set(labels(laps, 19).values()) == {None}
    assert set(labels(laps, 20).values()) == {None}
    # Had it been a red flag, laps 19 and 20 would be (no SESSION STARTED after it).
    await db.execute("UPDATE f1.race_control SET message = 'RED FLAG - RACE SUSPENDED'"
                     " WHERE message LIKE 'RED FLAG INFRINGEMENT%'")
    await derive(db, RACE)
    laps = (await derived(db, RACE))["lap_metrics"]
    assert set(labels(laps, 20).values()) == {"RED"}


async def test_label_priority_and_messages_without_a_date(db: Connection) -> None:
    laps = (await race(db))["lap_metrics"]
    # SAR is lapped: his lap 16 runs while the leaders' lap 17 is red-flagged.
    assert laps[SAR, 16]["neutralised"] == "RED"
    # A dateless "SAFETY CAR DEPLOYED" opens no period: lap 2 is clean.
    assert set(labels(laps, 2).values()) == {None}
    # A lap overlapping SC and RED periods is RED: make the SC run into the red flag.
    await db.execute("DELETE FROM f1.race_control WHERE message = 'Safety Car In This Lap'")
    await derive(db, RACE)
    laps = (await derived(db, RACE))["lap_metrics"]
    # No end message and no later TRACK CLEAR or green flag: the period is still open.
    assert labels(laps, 16) == {VER: "SC", LEC: "SC", PER: "SC", SAI: "SC", SAR: "RED"}
    assert set(labels(laps, 17).values()) == {"RED"}
    assert set(labels(laps, 18).values()) == {"SC"}


async def test_fuel_tyre_age_in_and_out_laps(db: Connection) -> None:
    laps = (await race(db))["lap_metrics"]
    # L = 20, the winner's number_of_laps: fuel 110 - 5.5 (n - 0.5).
    assert laps[VER, 1]["fuel_kg"] == Decimal("107.25")
    assert laps[VER, 20]["fuel_kg"] == Decimal("2.75")
    assert laps[VER, 1]["tyre_age"] == 4          # a used set: tyre_age_at_start 3
    assert laps[VER, 9]["tyre_age"] == 1 and laps[VER, 9]["compound"] == "HARD"
    assert laps[VER, 8]["is_in_lap"] and laps[VER, 8]["invalid_reason"] == "in_lap"
    # PER's out-lap 10 lacks is_pit_out_lap upstream: the first lap of stint 2 is one.
    assert laps[PER, 10]["is_out_lap"] and laps[PER, 10]["stint_number"] == 2
    # HUL stopped on lap 10 and retired on his out-lap: stint 3 is 11..10 and holds it.
    assert laps[HUL, 11]["stint_number"] == 3 and laps[HUL, 11]["tyre_age"] == 1
    assert laps[HUL, 11]["position"] is None and laps[HUL, 11]["fuel_corrected_s"] is None
    assert laps[VER, 1]["invalid_reason"] == "lap_1"


async def test_positions_lapped_cars_and_missing_laps(db: Connection) -> None:
    tables = await race(db)
    laps = tables["lap_metrics"]
    # SAR, lapped: placed among those who completed lap 19, more than a lap behind.
    assert laps[SAR, 19]["position"] == 5
    assert laps[SAR, 19]["gap_to_leader_s"] > 100
    assert (SAR, 20) not in laps
    # SAR's lap 1 has no start or duration: it ended when his lap 2 started.
    assert laps[SAR, 1]["position"] == 6
    # PER's lap 6 is missing: no row, no position; the others close up.
    assert (PER, 6) not in laps
    assert sorted(row["position"] for (d, n), row in laps.items() if n == 6) == [1, 2, 3, 4, 5]
    for n in range(1, 21):
        places = sorted(row["position"] for (d, k), row in laps.items()
                        if k == n and row["position"] is not None)
        assert places == list(range(1, len(places) + 1))
    drivers = tables["driver_metrics"]
    assert sum(m["laps_led"] for m in drivers.values()) == 20
    assert drivers[HUL]["positions_gained"] is None   # not classified
    result = await db.fetchval(
        "SELECT position FROM f1.session_results WHERE session_key = $1 AND driver_number = $2",
        RACE, SAI)
    assert drivers[SAI]["positions_gained"] == 4 - result


async def test_pit_cycles(db: Connection) -> None:
    tables = await race(db)
    cycles, laps = tables["pit_cycles"], tables["lap_metrics"]
    assert set(cycles) == {(VER, PER, 8), (PER, VER, 13), (LEC, VER, 7), (LEC, VER, 13),
                           (SAI, LEC, 11)}
    # LEC, 1.459 s behind VER after lap 6, stops first and is ahead after lap 9.
    undercut = cycles[LEC, VER, 7]
    assert (undercut["kind"], undercut["succeeded"], undercut["neutralised"]) == (
        "undercut", True, False)
    before = laps[LEC, 6]["gap_to_leader_s"] - laps[VER, 6]["gap_to_leader_s"]
    after = laps[LEC, 9]["gap_to_leader_s"] - laps[VER, 9]["gap_to_leader_s"]
    assert undercut["gain_s"] == before - after and after < 0
    # VER ahead of PER (adjacent) before their stops on 8 and 9, still ahead after lap 10.
    overcut = cycles[VER, PER, 8]
    assert (overcut["kind"], overcut["succeeded"]) == ("overcut", False)
    # Stops under the safety car.
    assert cycles[LEC, VER, 13]["neutralised"]
    # Skipped: HUL stopped on lap 1 (no position at the end of lap 0) and SAR on 3; HUL
    # retired after his stop on 10 (no position after SAI's stop on 11); PER has no lap 6
    # (LEC 7, PER 9).
    assert not [k for k in cycles if HUL in k[:2]]
    assert (LEC, PER, 7) not in cycles
