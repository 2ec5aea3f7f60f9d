"""The F1 demo upstream (devstack/f1) over real HTTP: the contract's entity shapes and
query syntax, the real Bahrain 2024 race, the live clock, the faults, the rate limit
and the generator's known truth."""

from __future__ import annotations

import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.f1 import (
    F1FaultConfig,
    F1UpstreamServer,
    GeneratedRace,
    Neutralisation,
    generate_race,
)
from devstack.f1.model import FUEL_EFFECT_S_PER_KG, fuel_kg, tyre_age
from devstack.f1.presets import load_preset
from devstack.f1.records import CALENDAR_ENDPOINTS, ENDPOINTS
from tests.f1.conftest_upstream import (
    BAHRAIN_MEETING,
    BAHRAIN_PRACTICE_1,
    BAHRAIN_QUALIFYING,
    BAHRAIN_RACE,
    CHINA_RACE,
    CHINA_SPRINT,
    CHINA_SPRINT_QUALIFYING,
    TRUTH_CYCLES,
    TRUTH_DEGRADATION,
    TRUTH_LAPS,
    TRUTH_RACE,
    f1_truth_race,
    f1_upstream,
    f1_upstream_server,
)

__all__ = ["f1_truth_race", "f1_upstream", "f1_upstream_server"]  # fixtures used here

DATA = Path(__file__).resolve().parents[2] / "devstack" / "f1" / "data"
# SOURCE.md of f1-laps-2024: laps per driver of the 2024 Bahrain race.
BAHRAIN_LAP_COUNTS = {
    **dict.fromkeys(("VER", "PER", "SAI", "LEC", "RUS", "NOR", "HAM", "PIA", "ALO", "STR"), 57),
    **dict.fromkeys(("ZHO", "MAG", "RIC", "TSU", "ALB", "HUL", "OCO", "GAS", "BOT"), 56),
    "SAR": 55,
}


# -- helpers -------------------------------------------------------------------------------


@pytest.fixture
def client(f1_upstream: F1UpstreamServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f1_upstream.url, timeout=10) as http:
        yield http


def items(client: httpx.Client, path: str) -> list[dict[str, Any]]:
    """The items of a raw ``/v1/...?query``; both empty styles read as []."""
    response = client.get(path)
    if response.status_code == 404 and response.json() == {"detail": "No results found."}:
        return []
    assert response.status_code == 200, (path, response.status_code, response.text)
    body = response.json()
    assert isinstance(body, list)
    return body


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def q(value: datetime) -> str:
    """A timestamp for a query string: offset included, ``+`` encoded."""
    return value.isoformat().replace("+", "%2B")


def truth_items(server: F1UpstreamServer, endpoint: str, session_key: int = 0
                ) -> list[dict[str, Any]]:
    return server.dataset.items(endpoint, session_key)


# -- entity shapes (contracts/f1-api.md, "Entities") ------------------------------------------


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_ts(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def is_str(value: Any) -> bool:
    return isinstance(value, str)


def is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def nullable(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


def is_segments(value: Any) -> bool:
    return value is None or (isinstance(value, list)
                             and all(v is None or is_int(v) for v in value))


def is_gap(value: Any) -> bool:
    return value is None or is_num(value) or (isinstance(value, str) and value.startswith("+"))


def is_result_value(value: Any) -> bool:
    if isinstance(value, list):
        return len(value) == 3 and all(is_gap(v) for v in value)
    return is_gap(value)


PLACE = {"circuit_key": is_int, "circuit_short_name": is_str, "country_key": is_int,
         "country_code": is_str, "country_name": is_str, "location": is_str,
         "gmt_offset": lambda v: isinstance(v, str) and len(v.lstrip("-")) == 8}
SHAPES: dict[str, dict[str, Callable[[Any], bool]]] = {
    "meetings": {"meeting_key": is_int, "year": is_int, "meeting_name": is_str,
                 "meeting_official_name": is_str, "circuit_type": is_str, "date_start": is_ts,
                 "date_end": is_ts, "is_cancelled": is_bool, **PLACE},
    "sessions": {"session_key": is_int, "meeting_key": is_int, "year": is_int,
                 "session_name": lambda v: v in ("Practice 1", "Practice 2", "Practice 3",
                                                 "Qualifying", "Sprint Qualifying", "Sprint",
                                                 "Race"),
                 "session_type": lambda v: v in ("Practice", "Qualifying", "Race"),
                 "date_start": is_ts, "date_end": is_ts, "is_cancelled": is_bool, **PLACE},
    "drivers": {"driver_number": is_int, "broadcast_name": nullable(is_str),
                "full_name": nullable(is_str), "first_name": nullable(is_str),
                "last_name": nullable(is_str), "name_acronym": nullable(is_str),
                "team_name": nullable(is_str),
                "team_colour": nullable(lambda v: is_str(v) and len(v) == 6),
                "headshot_url": nullable(is_str)},
    "laps": {"driver_number": is_int, "lap_number": lambda v: is_int(v) and v >= 1,
             "date_start": nullable(is_ts), "lap_duration": nullable(is_num),
             "duration_sector_1": nullable(is_num), "duration_sector_2": nullable(is_num),
             "duration_sector_3": nullable(is_num), "i1_speed": nullable(is_int),
             "i2_speed": nullable(is_int), "st_speed": nullable(is_int),
             "is_pit_out_lap": is_bool, "segments_sector_1": is_segments,
             "segments_sector_2": is_segments, "segments_sector_3": is_segments},
    "stints": {"driver_number": is_int, "stint_number": lambda v: is_int(v) and v >= 1,
               "lap_start": is_int, "lap_end": is_int, "compound": nullable(is_str),
               "tyre_age_at_start": nullable(is_int)},
    "pit": {"driver_number": is_int, "lap_number": is_int, "date": nullable(is_ts),
            "lane_duration": nullable(is_num), "stop_duration": nullable(is_num)},
    "weather": {"date": is_ts, "air_temperature": is_num, "track_temperature": is_num,
                "humidity": is_num, "pressure": is_num, "rainfall": lambda v: v in (0, 1),
                "wind_direction": lambda v: is_int(v) and 0 <= v <= 359,
                "wind_speed": is_num},
    "race_control": {"date": nullable(is_ts), "category": nullable(is_str),
                     "flag": nullable(is_str), "scope": nullable(is_str),
                     "sector": nullable(is_int), "driver_number": nullable(is_int),
                     "lap_number": nullable(is_int), "qualifying_phase": nullable(is_int),
                     "message": nullable(is_str)},
    "position": {"driver_number": is_int, "date": is_ts,
                 "position": lambda v: is_int(v) and v >= 1},
    "intervals": {"driver_number": is_int, "date": is_ts, "gap_to_leader": is_gap,
                  "interval": is_gap},
    "overtakes": {"date": is_ts, "overtaking_driver_number": is_int,
                  "overtaken_driver_number": is_int, "position": is_int},
    "session_result": {"driver_number": is_int, "position": nullable(is_int),
                       "number_of_laps": is_int, "dnf": is_bool, "dns": is_bool,
                       "dsq": is_bool, "duration": is_result_value,
                       "gap_to_leader": is_result_value},
    "starting_grid": {"driver_number": is_int, "position": nullable(is_int),
                      "lap_duration": nullable(is_num)},
}


def shape_errors(endpoint: str, item: Any) -> list[str]:
    if not isinstance(item, dict):
        return [f"not an object: {item!r}"]
    errors = [f"{name}={item.get(name)!r}" for name, check in SHAPES[endpoint].items()
              if name not in item or not check(item[name])]
    if not is_int(item.get("meeting_key")):
        errors.append("meeting_key")
    if endpoint != "meetings" and not is_int(item.get("session_key")):
        errors.append("session_key")
    return errors


# -- shapes of every endpoint ---------------------------------------------------------------

SHAPE_QUERIES = [
    ("meetings", "year=2024"),
    ("sessions", "year=2024"),
    *[(endpoint, f"session_key={key}")
      for key in (BAHRAIN_RACE, BAHRAIN_QUALIFYING, BAHRAIN_PRACTICE_1, CHINA_SPRINT,
                  CHINA_SPRINT_QUALIFYING, CHINA_RACE, TRUTH_RACE)
      for endpoint in ENDPOINTS if endpoint not in ("meetings", "sessions")],
]


def test_every_endpoint_answers_items_of_the_contract_shapes(client: httpx.Client) -> None:
    seen: dict[str, int] = {}
    for endpoint, query in SHAPE_QUERIES:
        found = items(client, f"/v1/{endpoint}?{query}")
        for item in found:
            assert not shape_errors(endpoint, item), (endpoint, query, item)
        seen[endpoint] = seen.get(endpoint, 0) + len(found)
    assert all(seen[endpoint] > 0 for endpoint in ENDPOINTS), seen
    assert items(client, "/v1/meetings?year=2024")[0]["year"] == 2024
    assert len(items(client, "/v1/sessions?year=2024")) == 10 + 1  # two weekends + generated


def test_the_demo_season_serves_each_natural_key_once() -> None:
    """A key served twice with different values (two position changes of one car in
    one millisecond) would leave what a client stores to the order it read them in."""
    dataset = load_preset("demo")
    repeated: dict[str, int] = {}
    for session_key in dataset.session_keys():
        for name, endpoint in ENDPOINTS.items():
            if name in CALENDAR_ENDPOINTS:
                continue
            keys = Counter(tuple(item.get(f) for f in endpoint.natural_key)
                           for item in dataset.items(name, session_key))
            repeated[name] = repeated.get(name, 0) + sum(n - 1 for n in keys.values())
    assert sum(repeated.values()) == 0, repeated
    assert len(dataset.session_keys()) > 100


def test_results_differ_for_qualifying_and_races(client: httpx.Client) -> None:
    qualifying = items(client, f"/v1/session_result?session_key={BAHRAIN_QUALIFYING}")
    assert all(isinstance(r["duration"], list) and len(r["duration"]) == 3 for r in qualifying)
    pole = next(r for r in qualifying if r["position"] == 1)
    assert pole["driver_number"] == 1 and pole["duration"] == [90.031, 89.374, 89.179]
    assert pole["gap_to_leader"][2] == 0
    race = items(client, f"/v1/session_result?session_key={BAHRAIN_RACE}")
    by_number = {r["driver_number"]: r for r in race}
    assert by_number[1]["position"] == 1 and by_number[1]["duration"] == 5504.742
    assert by_number[11]["gap_to_leader"] == 22.457  # Pérez, f1db
    assert by_number[24]["gap_to_leader"] == "+1 LAP"  # Zhou, lapped
    assert by_number[2]["gap_to_leader"] == "+2 LAPS" and by_number[2]["number_of_laps"] == 55
    assert by_number[1]["points"] == 26


# -- query syntax ----------------------------------------------------------------------------


def test_equalities_bounds_and_intervals_select_exactly(client: httpx.Client,
                                                         f1_upstream: F1UpstreamServer) -> None:
    base = f"/v1/laps?session_key={BAHRAIN_RACE}"
    every = truth_items(f1_upstream, "laps", BAHRAIN_RACE)

    def keys(found: list[dict[str, Any]]) -> set[tuple[int, int]]:
        return {(lap["driver_number"], lap["lap_number"]) for lap in found}

    def expect(predicate: Callable[[dict[str, Any]], bool]) -> set[tuple[int, int]]:
        return keys([lap for lap in every if predicate(lap)])

    assert keys(items(client, f"{base}&driver_number=1")) == expect(
        lambda lap: lap["driver_number"] == 1)
    assert keys(items(client, f"{base}&driver_number=4&driver_number=81")) == expect(
        lambda lap: lap["driver_number"] in (4, 81))
    # `lap_number>=10` arrives as key `lap_number>`, value 10 (a generic encoder's form).
    assert keys(items(client, f"{base}&driver_number=1&lap_number%3E=10&lap_number<=12")) == {
        (1, 10), (1, 11), (1, 12)}
    assert keys(items(client, f"{base}&driver_number=1&lap_number<3")) == {(1, 1), (1, 2)}
    assert keys(items(client, f"{base}&driver_number=1&lap_number>55")) == {(1, 56), (1, 57)}
    two_intervals = (f"{base}&driver_number=1&lap_number>=1&lap_number<=2"
                     "&lap_number>=56&lap_number<=57")
    assert keys(items(client, two_intervals)) == {(1, 1), (1, 2), (1, 56), (1, 57)}
    fast = items(client, f"{base}&lap_duration<93")  # a decimal compared as a number
    assert keys(fast) == expect(lambda lap: (lap["lap_duration"] or 99) < 93)
    assert (1, 39) in keys(fast)  # Verstappen's fastest lap, 92.608


def test_date_windows_offsets_and_encoded_keys(client: httpx.Client,
                                               f1_upstream: F1UpstreamServer) -> None:
    low = datetime(2024, 3, 2, 15, 30, tzinfo=UTC)
    high = low + timedelta(minutes=2)
    truth = [row for row in truth_items(f1_upstream, "position", BAHRAIN_RACE)
             if low <= moment(row["date"]) < high]
    assert truth
    window = f"/v1/position?session_key={BAHRAIN_RACE}&date>={q(low)}&date<{q(high)}"
    assert sorted(map(json.dumps, items(client, window))) == sorted(map(json.dumps, truth))
    encoded = f"/v1/position?session_key={BAHRAIN_RACE}&date%3E={q(low)}&date%3C{q(high)}"
    assert len(items(client, encoded)) == len(truth)
    # The same instant at +03:00 (Bahrain's offset) selects the same rows.
    local = low.astimezone(datetime.fromisoformat("2024-03-02T18:30:00+03:00").tzinfo)
    at_local = f"/v1/position?session_key={BAHRAIN_RACE}&date>={q(local)}&date<{q(high)}"
    assert len(items(client, at_local)) == len(truth)
    # Without an offset a timestamp is UTC.
    naive = f"/v1/position?session_key={BAHRAIN_RACE}&date>=2024-03-02T15:30:00&date<{q(high)}"
    assert len(items(client, naive)) == len(truth)
    # A date-only value is widened to whole days: date_start>2024-03-01 is from 03-02 00:00.
    sessions = items(client, f"/v1/sessions?meeting_key={BAHRAIN_MEETING}"
                             "&date_start>2024-03-01")
    assert [s["session_key"] for s in sessions] == [BAHRAIN_RACE]
    # A field the entity does not have matches nothing: laps have date_start, not date.
    assert items(client, f"/v1/laps?session_key={BAHRAIN_RACE}&date>={q(low)}") == []


def test_empty_answers_both_ways_and_errors(client: httpx.Client,
                                            f1_upstream: F1UpstreamServer) -> None:
    empty = f"/v1/laps?session_key={BAHRAIN_RACE}&driver_number=99"
    f1_upstream.faults.set(empty_not_found_rate=0.0)
    response = client.get(empty)
    assert (response.status_code, response.json()) == (200, [])
    f1_upstream.faults.set(empty_not_found_rate=1.0)
    response = client.get(empty)
    assert (response.status_code, response.json()) == (404, {"detail": "No results found."})
    unknown = client.get("/v1/car_telemetry?session_key=9472")
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "Not Found"})
    missing = client.get("/v1/laps?driver_number=1")
    assert missing.status_code == 422 and "session_key" in missing.json()["detail"]
    assert client.get("/v1/sessions").status_code == 422
    # Intervals and overtakes exist for race-type sessions only.
    assert items(client, f"/v1/intervals?session_key={BAHRAIN_QUALIFYING}") == []
    assert items(client, f"/v1/overtakes?session_key={CHINA_SPRINT}")


def test_answers_come_in_no_particular_order(client: httpx.Client,
                                             f1_upstream: F1UpstreamServer) -> None:
    path = f"/v1/laps?session_key={BAHRAIN_RACE}&driver_number=1"
    first = [lap["lap_number"] for lap in items(client, path)]
    assert first != sorted(first) and sorted(first) == list(range(1, 58))
    f1_upstream.faults.set(order="sorted")
    assert [lap["lap_number"] for lap in items(client, path)] == list(range(1, 58))


def test_starting_grid_carries_the_qualifying_session_key(client: httpx.Client) -> None:
    grid = items(client, f"/v1/starting_grid?session_key={BAHRAIN_QUALIFYING}")
    assert {row["session_key"] for row in grid} == {BAHRAIN_QUALIFYING}
    by_position = {row["position"]: row for row in grid}
    assert by_position[1]["driver_number"] == 1 and by_position[1]["lap_duration"] == 89.179
    assert by_position[2]["driver_number"] == 16
    assert items(client, f"/v1/starting_grid?session_key={BAHRAIN_RACE}") == []
    sprint_grid = items(client, f"/v1/starting_grid?session_key={CHINA_SPRINT_QUALIFYING}")
    assert len(sprint_grid) == 20 and {r["session_key"] for r in sprint_grid} == {
        CHINA_SPRINT_QUALIFYING}


# -- the real Bahrain 2024 race ---------------------------------------------------------------


def test_bahrain_laps_are_the_vendored_lap_times(client: httpx.Client) -> None:
    vendored = json.loads((DATA / "laps-2024.json").read_text("utf-8"))["01-bahrain"]["drivers"]
    laps = items(client, f"/v1/laps?session_key={BAHRAIN_RACE}")
    assert len(laps) == 1129
    by_driver: dict[int, dict[int, dict[str, Any]]] = {}
    for lap in laps:
        by_driver.setdefault(lap["driver_number"], {})[lap["lap_number"]] = lap
    for acronym, entry in vendored.items():
        served = by_driver[entry["number"]]
        assert len(served) == BAHRAIN_LAP_COUNTS[acronym], acronym
        for index, (time_ms, s1, s2, s3, _, _) in enumerate(entry["laps"]):
            lap = served[index + 1]
            expected = [None if ms is None else ms / 1000 for ms in (time_ms, s1, s2, s3)]
            assert [lap["lap_duration"], lap["duration_sector_1"], lap["duration_sector_2"],
                    lap["duration_sector_3"]] == expected, (acronym, index + 1)
    verstappen = by_driver[1]
    assert verstappen[39]["lap_duration"] == 92.608  # f1db's fastest lap of the race
    assert verstappen[1]["date_start"] == "2024-03-02T15:03:42+00:00"
    assert verstappen[2]["date_start"] == "2024-03-02T15:05:19.284000+00:00"  # + 97.284 s
    assert verstappen[18]["is_pit_out_lap"] and not verstappen[17]["is_pit_out_lap"]


def test_bahrain_stints_and_pit_stops_agree_with_f1db(client: httpx.Client) -> None:
    season = json.loads((DATA / "season-2024.json").read_text("utf-8"))
    bahrain = next(r for r in season["rounds"] if r["round"] == 1)
    columns = bahrain["pit_stops"]["columns"]
    f1db: dict[int, list[int]] = {}
    for row in bahrain["pit_stops"]["rows"]:
        stop = dict(zip(columns, row, strict=True))
        f1db.setdefault(stop["number"], []).append(stop["lap"])
    stints = items(client, f"/v1/stints?session_key={BAHRAIN_RACE}")
    pits = items(client, f"/v1/pit?session_key={BAHRAIN_RACE}")
    assert len(pits) == sum(len(laps) for laps in f1db.values()) == 43
    for number, stop_laps in f1db.items():
        own = sorted((s for s in stints if s["driver_number"] == number),
                     key=lambda s: s["stint_number"])
        # f1db's stop lap is the in-lap: the last lap of every stint but the last.
        assert [s["lap_end"] for s in own[:-1]] == sorted(stop_laps), number
        assert [s["lap_start"] for s in own[1:]] == [lap + 1 for lap in sorted(stop_laps)]
        served = sorted(p["lap_number"] for p in pits if p["driver_number"] == number)
        assert served == sorted(stop_laps)
    verstappen = sorted((s for s in stints if s["driver_number"] == 1),
                        key=lambda s: s["stint_number"])
    assert [(s["compound"], s["lap_start"], s["lap_end"], s["tyre_age_at_start"])
            for s in verstappen] == [("SOFT", 1, 17, 3), ("HARD", 18, 37, 0),
                                     ("SOFT", 38, 57, 0)]
    hulkenberg = next(p for p in pits if p["driver_number"] == 27 and p["lap_number"] == 1)
    assert hulkenberg["lane_duration"] == 36.604 and hulkenberg["stop_duration"] is None


def test_bahrain_positions_follow_the_laps(client: httpx.Client) -> None:
    """The last position event of each car is its classified position (f1db)."""
    events = sorted(items(client, f"/v1/position?session_key={BAHRAIN_RACE}"),
                    key=lambda e: e["date"])
    final: dict[int, int] = {}
    for event in events:
        final[event["driver_number"]] = event["position"]
    results = items(client, f"/v1/session_result?session_key={BAHRAIN_RACE}")
    assert final == {r["driver_number"]: r["position"] for r in results}
    messages = [m["message"] for m in items(client, f"/v1/race_control?session_key={BAHRAIN_RACE}")]
    assert "SESSION STARTED" in messages and "CHEQUERED FLAG" in messages
    intervals = items(client, f"/v1/intervals?session_key={BAHRAIN_RACE}")
    assert 3000 < len(intervals) < 4500
    assert any(i["gap_to_leader"] == "+1 LAP" for i in intervals)


# -- the live clock -------------------------------------------------------------------------


def test_live_clock_serves_what_exists_at_the_clock(client: httpx.Client,
                                                    f1_upstream: F1UpstreamServer) -> None:
    start = datetime(2024, 3, 2, 15, 0, tzinfo=UTC)
    f1_upstream.set_clock(BAHRAIN_RACE, 15 * 60)  # 11 min 18 s after lights out
    now = start + timedelta(minutes=15)
    laps = items(client, f"/v1/laps?session_key={BAHRAIN_RACE}")
    assert laps and all(moment(lap["date_start"]) <= now for lap in laps)
    incomplete = [lap for lap in laps if lap["lap_duration"] is None]
    by_driver: dict[int, list[dict[str, Any]]] = {}
    for lap in laps:
        by_driver.setdefault(lap["driver_number"], []).append(lap)
    for number, own in by_driver.items():
        last = max(own, key=lambda lap: lap["lap_number"])
        assert last["lap_duration"] is None, number  # the lap in progress
        assert last["duration_sector_3"] is None
    assert len(incomplete) >= len(by_driver) - 1  # SAR's lap 10 never has a time
    stints = items(client, f"/v1/stints?session_key={BAHRAIN_RACE}&driver_number=1")
    assert stints == [{**stints[0], "lap_end": max(lap["lap_number"] for lap in by_driver[1])}]
    assert all(moment(p["date"]) <= now
               for p in items(client, f"/v1/position?session_key={BAHRAIN_RACE}"))
    assert items(client, f"/v1/session_result?session_key={BAHRAIN_RACE}") == []
    assert items(client, f"/v1/laps?session_key={CHINA_RACE}") == []  # in the future
    assert items(client, f"/v1/laps?session_key={BAHRAIN_QUALIFYING}")  # the past: complete
    # Two minutes on, the lap then in progress is complete, as it finally is.
    in_progress = max(by_driver[1], key=lambda lap: lap["lap_number"])
    f1_upstream.set_clock(BAHRAIN_RACE, 17 * 60)
    path = (f"/v1/laps?session_key={BAHRAIN_RACE}&driver_number=1"
            f"&lap_number={in_progress['lap_number']}")
    (done,) = items(client, path)
    (final,) = [lap for lap in truth_items(f1_upstream, "laps", BAHRAIN_RACE)
                if lap["driver_number"] == 1 and lap["lap_number"] == in_progress["lap_number"]]
    assert done == final and done["lap_duration"] is not None
    f1_upstream.set_clock(BAHRAIN_RACE, 4 * 3600)  # long after: complete
    assert len(items(client, f"/v1/laps?session_key={BAHRAIN_RACE}")) == 1129
    assert len(items(client, f"/v1/session_result?session_key={BAHRAIN_RACE}")) == 20


def test_replay_runs_the_clock_through_the_admin_api(client: httpx.Client) -> None:
    answer = client.post("/_admin/clock", json={"replay": BAHRAIN_RACE, "speed": 3000})
    assert answer.status_code == 200 and answer.json()["mode"] == "running"
    first = len(items(client, f"/v1/laps?session_key={BAHRAIN_RACE}"))
    time.sleep(0.4)  # 20 session minutes
    later = len(items(client, f"/v1/laps?session_key={BAHRAIN_RACE}"))
    assert first < later < 1129
    frozen = client.post("/_admin/clock", json={"at": "2024-03-02T18:10:00+03:00"}).json()
    assert frozen == {"mode": "frozen", "now": "2024-03-02T15:10:00+00:00", "speed": 0.0,
                      "session_key": None}
    assert 0 < len(items(client, f"/v1/laps?session_key={BAHRAIN_RACE}")) < first + 200
    assert client.delete("/_admin/clock").json()["mode"] == "off"
    assert len(items(client, f"/v1/laps?session_key={BAHRAIN_RACE}")) == 1129
    sessions = client.get("/_admin/sessions").json()
    assert {s["session_key"] for s in sessions} >= {BAHRAIN_RACE, CHINA_SPRINT, TRUTH_RACE}


# -- faults -----------------------------------------------------------------------------------


def test_server_errors_are_html_and_429_has_retry_after(client: httpx.Client,
                                                         f1_upstream: F1UpstreamServer) -> None:
    path = f"/v1/drivers?session_key={BAHRAIN_RACE}"
    f1_upstream.faults.set(html_rate=1.0, html_status=502)
    response = client.get(path)
    assert response.status_code == 502 and response.headers["content-type"] == "text/html"
    assert response.text.startswith("<html>") and "Bad Gateway" in response.text
    f1_upstream.faults.set(F1FaultConfig(error_rate=1.0, error_statuses=(500,)))
    response = client.get(path)
    assert response.status_code == 500 and "Traceback" in response.text
    f1_upstream.faults.set(F1FaultConfig(rate_limit_rate=1.0, retry_after_s=3))
    response = client.get(path)
    assert response.status_code == 429 and response.headers["retry-after"] == "3"
    f1_upstream.faults.set(F1FaultConfig(rate_limit_rate=1.0, retry_after_omit_rate=1.0))
    response = client.get(path)
    assert response.status_code == 429 and "retry-after" not in response.headers
    f1_upstream.faults.clear()
    assert client.get(path).status_code == 200


def test_hidden_laps_reappear(client: httpx.Client, f1_upstream: F1UpstreamServer) -> None:
    path = f"/v1/laps?session_key={BAHRAIN_RACE}"

    def lap_numbers() -> set[int]:
        return {lap["lap_number"] for lap in items(client, path)}

    rule = client.post("/_admin/hidden", json={"session_key": BAHRAIN_RACE, "lap_number": 12})
    assert rule.status_code == 200
    assert 12 not in lap_numbers() and 11 in lap_numbers()
    client.delete("/_admin/hidden", params={"id": rule.json()["id"]})
    assert 12 in lap_numbers()
    # For the next two requests only.
    f1_upstream.data_faults.hide_lap(BAHRAIN_RACE, 30, requests=2)
    assert [30 in lap_numbers() for _ in range(3)] == [False, False, True]
    # Several laps of one driver.
    f1_upstream.data_faults.hide_driver_laps(BAHRAIN_RACE, 44, [5, 6, 7])
    hamilton = {lap["lap_number"] for lap in items(client, f"{path}&driver_number=44")}
    assert hamilton == set(range(1, 58)) - {5, 6, 7}
    f1_upstream.data_faults.reveal()
    assert len(items(client, f"{path}&driver_number=44")) == 57


def test_corrections_change_records_in_place(client: httpx.Client,
                                             f1_upstream: F1UpstreamServer) -> None:
    lap_path = f"/v1/laps?session_key={BAHRAIN_RACE}&driver_number=1&lap_number=5"
    (before,) = items(client, lap_path)
    corrected = client.post("/_admin/correct", json={
        "endpoint": "laps", "session_key": BAHRAIN_RACE,
        "key": {"driver_number": 1, "lap_number": 5}, "changes": {"lap_duration": 99.999}})
    assert corrected.status_code == 200
    (after,) = items(client, lap_path)
    assert after == {**before, "lap_duration": 99.999}
    f1_upstream.dataset.correct("pit", BAHRAIN_RACE, {"driver_number": 1, "lap_number": 17},
                                {"lane_duration": 30.5})
    (pit,) = items(client, f"/v1/pit?session_key={BAHRAIN_RACE}&driver_number=1&lap_number=17")
    assert pit["lane_duration"] == 30.5
    assert len(items(client, f"/v1/laps?session_key={BAHRAIN_RACE}&driver_number=1")) == 57
    client.post("/_admin/reset", json={"faults": False, "stats": False})
    assert items(client, lap_path) == [before]


def test_invalid_items_are_added_beside_valid_ones(client: httpx.Client,
                                                   f1_upstream: F1UpstreamServer) -> None:
    path = f"/v1/laps?session_key={BAHRAIN_RACE}&driver_number=1"
    injected = client.post("/_admin/invalid", json={
        "endpoint": "laps", "session_key": BAHRAIN_RACE, "kind": "lap_number_zero"})
    assert injected.status_code == 200
    found = items(client, path)
    assert len(found) == 58 and sum(1 for lap in found if lap["lap_number"] == 0) == 1
    client.post("/_admin/invalid", json={"endpoint": "position", "session_key": BAHRAIN_RACE,
                                         "kind": "position_string"})
    positions = items(client, f"/v1/position?session_key={BAHRAIN_RACE}")
    assert any(isinstance(p, dict) and isinstance(p.get("position"), str) for p in positions)
    client.delete("/_admin/invalid")
    f1_upstream.faults.set(invalid_rate=1.0, seed=3)
    found = items(client, path)
    invalid = [lap for lap in found if shape_errors("laps", lap)]
    assert len(found) == 58 and len(invalid) == 1


def test_wide_date_windows_are_refused(client: httpx.Client,
                                       f1_upstream: F1UpstreamServer) -> None:
    f1_upstream.faults.set(max_window_s=300)
    low = datetime(2024, 3, 2, 15, 30, tzinfo=UTC)
    base = f"/v1/position?session_key={BAHRAIN_RACE}"
    assert client.get(base).status_code == 422  # the whole session
    assert client.get(f"{base}&date>={q(low)}&date<{q(low + timedelta(minutes=10))}"
                      ).status_code == 422
    assert client.get(f"{base}&date>={q(low)}&date<{q(low + timedelta(minutes=5))}"
                      ).status_code == 200
    assert client.get(f"/v1/weather?session_key={BAHRAIN_RACE}").status_code == 200


def test_bearer_token(client: httpx.Client, f1_upstream: F1UpstreamServer) -> None:
    f1_upstream.token = "s3cret"
    path = f"/v1/drivers?session_key={BAHRAIN_RACE}"
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/_admin/health").status_code == 200  # admin needs no token


def test_rate_limit_and_peak_request_rate(client: httpx.Client,
                                          f1_upstream: F1UpstreamServer) -> None:
    client.patch("/_admin/faults", json={"rate_limit": True, "rate_limit_requests": 5})
    path = f"/v1/drivers?session_key={BAHRAIN_RACE}"
    codes = [client.get(path) for _ in range(6)]
    assert [r.status_code for r in codes] == [200] * 5 + [429]
    assert codes[-1].text == "Rate exceeded" and int(codes[-1].headers["retry-after"]) >= 1
    stats = client.get("/_admin/stats", params={"log": "0"}).json()
    assert stats["by_route"]["/v1/drivers"] == {"200": 5, "429": 1}
    assert stats["peak_requests_per_window"] == 6 and stats["rate_window_s"] == 10.0
    client.delete("/_admin/stats")
    client.patch("/_admin/faults", json={"rate_limit": False})
    for _ in range(3):
        client.get(path)
    assert client.get("/_admin/stats").json()["peak_requests_per_window"] == 3


# -- the generator's known truth ----------------------------------------------------------------


def least_squares_slope(xs: list[float], ys: list[float]) -> float:
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx


def test_generated_degradation_is_recovered(client: httpx.Client,
                                            f1_truth_race: GeneratedRace) -> None:
    """interfaces.md's fit over the truth's valid laps recovers the planned slope."""
    truth = f1_truth_race.truth
    laps = {(lap["driver_number"], lap["lap_number"]): lap
            for lap in items(client, f"/v1/laps?session_key={TRUTH_RACE}")}
    stints = items(client, f"/v1/stints?session_key={TRUTH_RACE}")
    checked = 0
    for stint in stints:
        expected = truth.stint(stint["driver_number"], stint["stint_number"])
        if expected.fitted_slope_s_per_lap is None:
            continue
        xs = [float(tyre_age(n, stint["lap_start"], stint["tyre_age_at_start"]))
              for n in expected.valid_laps]
        ys = [laps[(stint["driver_number"], n)]["lap_duration"]
              - FUEL_EFFECT_S_PER_KG * fuel_kg(n, TRUTH_LAPS) for n in expected.valid_laps]
        slope = least_squares_slope(xs, ys)
        assert math.isclose(slope, expected.fitted_slope_s_per_lap, abs_tol=1e-5)
        assert expected.tolerance_s_per_lap is not None
        assert abs(slope - expected.slope_s_per_lap) <= expected.tolerance_s_per_lap, stint
        checked += 1
    assert checked >= 30
    for driver, slope in TRUTH_DEGRADATION.items():
        assert all(s.slope_s_per_lap == slope for s in truth.stints if s.driver_number == driver)


def test_generated_pit_cycles_come_out_as_planned(client: httpx.Client,
                                                  f1_truth_race: GeneratedRace) -> None:
    """interfaces.md: order at the end of laps pA - 1 and pB + 1, from the served laps."""
    laps = items(client, f"/v1/laps?session_key={TRUTH_RACE}")
    ends = {(lap["driver_number"], lap["lap_number"]):
            moment(lap["date_start"]) + timedelta(seconds=lap["lap_duration"])
            for lap in laps if lap["date_start"] and lap["lap_duration"] is not None}
    pits = {(p["driver_number"], p["lap_number"])
            for p in items(client, f"/v1/pit?session_key={TRUTH_RACE}")}
    for cycle in TRUTH_CYCLES:
        assert {(cycle.first, cycle.first_lap), (cycle.second, cycle.second_lap)} <= pits

        def ahead(lap: int, a: int = cycle.first, b: int = cycle.second) -> int:
            return a if ends[(a, lap)] < ends[(b, lap)] else b

        before, after = ahead(cycle.first_lap - 1), ahead(cycle.second_lap + 1)
        behind_before = cycle.second if before == cycle.first else cycle.first
        assert behind_before == cycle.attacker
        assert (after == behind_before) is cycle.succeeds, cycle
        gap = (ends[(cycle.first, cycle.first_lap - 1)]
               - ends[(cycle.second, cycle.first_lap - 1)]).total_seconds()
        assert abs(gap) <= 3.0  # close enough to count as a cycle
    assert [c.succeeded for c in f1_truth_race.truth.cycles] == [c.succeeds for c in TRUTH_CYCLES]


def test_generated_safety_car_is_announced_and_slow(client: httpx.Client,
                                                    f1_truth_race: GeneratedRace) -> None:
    messages = sorted((m for m in items(client, f"/v1/race_control?session_key={TRUTH_RACE}")
                       if m["date"]), key=lambda m: m["date"])
    texts = [m["message"] for m in messages]
    deployed = texts.index("SAFETY CAR DEPLOYED")
    in_this_lap = texts.index("SAFETY CAR IN THIS LAP")
    assert deployed < in_this_lap and messages[in_this_lap]["lap_number"] == 41
    (period,) = f1_truth_race.truth.periods
    lap_40 = [lap for lap in items(client, f"/v1/laps?session_key={TRUTH_RACE}")
              if lap["lap_number"] == 40]
    # The leader laps behind the safety car; the others close up to it, slower than green.
    leader = min(lap_40, key=lambda lap: lap["date_start"])
    assert leader["lap_duration"] > 1.3 * 93.0
    assert all(lap["lap_duration"] > 1.1 * 93.0 for lap in lap_40)
    assert moment(messages[deployed]["date"]).timestamp() == pytest.approx(period.start)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_generator_honours_cycles_around_neutralisations(seed: int) -> None:
    """A VSC and a safety car before the cycles, another after: the queue and the slow
    laps move everything, and the planned outcomes still hold (the generator checks them
    and raises if not); slopes stay within tolerance even at realistic noise."""
    race = generate_race(seed, laps=55, noise_s=0.6, planned_pit_cycles=TRUTH_CYCLES,
                         neutralisations=[Neutralisation("VSC", 5, 6),
                                          Neutralisation("SC", 10, 12),
                                          Neutralisation("SC", 40, 43)])
    assert [c.succeeded for c in race.truth.cycles] == [c.succeeds for c in TRUTH_CYCLES]
    assert [p.kind for p in race.truth.periods] == ["VSC", "SC", "SC"]
    for stint in race.truth.stints:
        if stint.fitted_slope_s_per_lap is not None:
            assert stint.tolerance_s_per_lap is not None
            assert (abs(stint.fitted_slope_s_per_lap - stint.slope_s_per_lap)
                    <= stint.tolerance_s_per_lap)


# -- the command line -------------------------------------------------------------------------


def test_cli_prints_its_url_and_exits_cleanly_on_sigterm() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.f1", "--port", "0", "--preset", "bahrain",
         "--rate-limit", "--faults", '{"empty_not_found_rate": 0}'],
        stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("devstack.f1 listening on http://127.0.0.1:")
        url = line.split()[3]
        response = httpx.get(f"{url}/v1/sessions?year=2024", timeout=5)
        assert response.status_code == 200 and len(response.json()) == 5
        faults = httpx.get(f"{url}/_admin/faults", timeout=5).json()
        assert faults["rate_limit"] is True and faults["empty_not_found_rate"] == 0
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
