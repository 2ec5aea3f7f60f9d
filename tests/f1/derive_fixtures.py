"""Raw F1 rows for the derive and quality tests: a synthetic race built to hold every
tricky case of the definitions, and the real 2024 Bahrain Grand Prix converted from
/work/shared/data (TracingInsights/2024 lap data, MIT; grid, results and pit stops from
f1db, CC BY 4.0). Plus the reverse: a session's raw rows read back as the plain dicts
tests/f1/reference_metrics.py takes."""

from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from activities.f1.derive import DeriveOutcome, recompute_session
from pipeworks.db import Connection
from tests.f1.reference_metrics import differences, reference_metrics

Row = dict[str, Any]

RACE = 9001
QUALIFYING = 9000
MEETING = 900
T0 = datetime(2024, 3, 2, 15, 3, tzinfo=UTC)

BAHRAIN_RACE = 9472
BAHRAIN_QUALIFYING = 9468
BAHRAIN_MEETING = 1229
SHARED_DATA = Path("/work/shared/data")
BAHRAIN_LAPS = SHARED_DATA / "f1-laps-2024" / "Bahrain Grand Prix" / "Race"
BAHRAIN_F1DB = SHARED_DATA / "f1db" / "seasons" / "2024" / "races" / "01-bahrain"
SKIP_REASON = ("the real Bahrain 2024 data (/work/shared/data/f1-laps-2024 and f1db) is not"
               " on this machine")

# Raw tables in insertion order, with the columns the builders fill.
TABLES = ("sessions", "drivers", "laps", "stints", "pit_stops", "weather", "race_control",
          "positions", "session_results", "starting_grid")


@dataclass
class RawSession:
    """Rows per raw f1 table (without schema), as dicts of column -> value."""

    tables: dict[str, list[Row]] = field(default_factory=lambda: {t: [] for t in TABLES})

    def __getitem__(self, table: str) -> list[Row]:
        return self.tables[table]


async def insert_raw(conn: Connection, raw: RawSession) -> None:
    for table in TABLES:
        rows = raw[table]
        if not rows:
            continue
        columns = list(rows[0])
        await conn.copy_records_to_table(
            table, schema_name="f1", columns=columns,
            records=[tuple(row[c] for c in columns) for row in rows])



def _micro(seconds: float) -> timedelta:
    return timedelta(microseconds=round(seconds * 1e6))


def _message_key(row: Row) -> str:
    parts = [row["date"].astimezone(UTC).isoformat() if row["date"] else "",
             row["driver_number"], row["lap_number"], row["category"], row["flag"],
             row["scope"], row["sector"]]
    return "\x1f".join("" if p is None else str(p) for p in parts)


def race_control_row(session_key: int, meeting_key: int, date: datetime | None, message: str,
                     *, flag: str | None = None, category: str = "Other",
                     lap_number: int | None = None, scope: str | None = "Track",
                     driver_number: int | None = None) -> Row:
    row: Row = {"session_key": session_key, "meeting_key": meeting_key, "date": date,
                "category": category, "flag": flag, "scope": scope, "sector": None,
                "driver_number": driver_number, "lap_number": lap_number,
                "qualifying_phase": None, "message": message}
    row["message_key"] = _message_key(row)
    return row


def _session(session_key: int, name: str, kind: str, start: datetime, meeting: int) -> Row:
    return {"session_key": session_key, "meeting_key": meeting, "year": start.year,
            "session_name": name, "session_type": kind, "date_start": start,
            "date_end": start + timedelta(hours=2), "is_cancelled": False}


def _position_events(session_key: int, meeting: int, finish: dict[tuple[int, int], datetime]
                     ) -> list[Row]:
    """f1.positions as change events at each lap end: the running order then (most laps
    completed first, earlier completion first), so that at any instant the drivers'
    latest positions are 1..k, each once (a retired driver sinks as others pass him)."""
    done: dict[int, tuple[int, datetime]] = {}
    rows: list[Row] = []
    last: dict[int, int] = {}
    moments: dict[datetime, list[tuple[int, int]]] = {}
    for (d, n), at in finish.items():
        moments.setdefault(at, []).append((d, n))
    for at in sorted(moments):
        for d, n in moments[at]:
            if d not in done or done[d][0] < n:
                done[d] = (n, at)
        order = sorted(done, key=lambda d: (-done[d][0], done[d][1], d))
        for place, d in enumerate(order, start=1):
            if last.get(d) != place:
                rows.append({"session_key": session_key, "meeting_key": meeting,
                             "driver_number": d, "date": at, "position": place})
                last[d] = place
    return rows


# --- the synthetic race -------------------------------------------------------------

# driver -> (acronym, team, base lap time, grid place)
SYNTHETIC_DRIVERS: dict[int, tuple[str, str | None, float, int]] = {
    1: ("VER", "Red", 90.0, 1),
    16: ("LEC", "Blue", 90.2, 2),
    11: ("PER", "Red", 90.4, 3),
    55: ("SAI", "Blue", 90.5, 4),
    27: ("HUL", None, 91.0, 5),   # stops on lap 1 and 10, retires on out-lap 11
    2: ("SAR", None, 96.5, 6),    # lapped; lap 1 without start or duration
}
# driver -> in-laps
SYNTHETIC_STOPS = {1: [8, 14], 16: [7, 13], 11: [9, 13], 55: [11], 27: [1, 10], 2: [3, 15]}
# Seconds an out-lap loses: LEC's crew is quicker, so his undercut on lap 7 works.
OUT_LAP_LOSS = {16: 17.0}
LAPS = 20
COMPOUNDS = ("MEDIUM", "HARD", "SOFT")
# Extra seconds on a lap number for everyone: VSC on 5, SC on 12-14, red flag on 17.
SLOWER = {5: 6.0, 12: 15.0, 13: 35.0, 14: 30.0, 17: 600.0}
# PER's lap 6 is missing (one driver's lap); PER's out-lap 10 is not flagged
# is_pit_out_lap (f1-api.md: it happens); it is found as the first lap of stint 2.
MISSING = {(11, 6)}
UNFLAGGED_OUT_LAPS = {(11, 10)}


def _noise(driver: int, lap: int) -> float:
    return ((driver * 7 + lap * 13) % 11 - 5) * 0.02


def _synthetic_duration(d: int, n: int, stint_lap: int) -> float:
    _, _, base, grid = SYNTHETIC_DRIVERS[d]
    fuel = max(110 - 110 / LAPS * (n - 0.5), 0) * 0.03
    seconds = base + fuel + 0.05 * stint_lap + _noise(d, n) + SLOWER.get(n, 0.0)
    if n == 1:
        seconds += 5 + 0.3 * grid
    if n in SYNTHETIC_STOPS[d]:
        seconds += 4.0      # in-lap
    if n - 1 in SYNTHETIC_STOPS[d]:
        seconds += OUT_LAP_LOSS.get(d, 20.0)
    return round(seconds, 3)


def synthetic_race(*, missing_lap: bool = True) -> RawSession:
    """Six drivers (two teams of two, two without a team), 20 laps: pit stops (a stop on
    lap 1, two stops under and around a safety car), a VSC on lap 5 ending 0.4 s into
    LEC's lap 6, a safety car on laps 12-14 ending when the leader completes lap 14, a
    red flag on lap 17, a stewards' "RED FLAG INFRINGEMENT" note, a lapped car, a lap
    missing for one driver (unless not `missing_lap`), a retirement on an out-lap (stint
    lap_end < lap_start)."""
    raw = RawSession()
    raw["sessions"].extend([
        _session(RACE, "Race", "Race", T0 - timedelta(minutes=3), MEETING),
        _session(QUALIFYING, "Qualifying", "Qualifying", T0 - timedelta(days=1), MEETING)])
    starts: dict[tuple[int, int], datetime] = {}
    durations: dict[tuple[int, int], float] = {}
    for d in SYNTHETIC_DRIVERS:
        at, stint_lap = T0, 0
        for n in range(1, LAPS + 2):
            stint_lap = 1 if n - 1 in SYNTHETIC_STOPS[d] else stint_lap + 1
            starts[d, n] = at
            durations[d, n] = _synthetic_duration(d, n, stint_lap)
            at += _micro(durations[d, n])
    race_end = min(starts[d, LAPS + 1] for d in SYNTHETIC_DRIVERS)
    last_lap = {d: max(n for n in range(1, LAPS + 1) if starts[d, n] < race_end)
                for d in SYNTHETIC_DRIVERS}
    last_lap[27] = 11

    def leader_start(n: int) -> datetime:
        return min(starts[d, n] for d in SYNTHETIC_DRIVERS)

    finish: dict[tuple[int, int], datetime] = {}
    for d, (acronym, team, _, grid) in SYNTHETIC_DRIVERS.items():
        raw["drivers"].append({"session_key": RACE, "meeting_key": MEETING, "driver_number": d,
                               "name_acronym": acronym, "team_name": team})
        raw["starting_grid"].append({"session_key": QUALIFYING, "meeting_key": MEETING,
                                     "driver_number": d, "position": grid})
        for n in range(1, last_lap[d] + 1):
            if missing_lap and (d, n) in MISSING:
                continue
            seconds: float | None = durations[d, n]
            start: datetime | None = starts[d, n]
            if (d, n) in ((2, 1), (27, 11)):
                seconds = None
            if (d, n) == (2, 1):
                start = None
            if seconds is not None and start is not None:
                finish[d, n] = start + _micro(seconds)
            s1 = round(seconds * 0.3, 3) if seconds is not None else None
            s2 = round(seconds * 0.45, 3) if seconds is not None else None
            s3 = round(seconds - s1 - s2, 3) if seconds is not None and s1 and s2 else None
            raw["laps"].append({
                "session_key": RACE, "meeting_key": MEETING, "driver_number": d,
                "lap_number": n, "date_start": start, "lap_duration": seconds,
                "duration_sector_1": s1, "duration_sector_2": s2, "duration_sector_3": s3,
                "is_pit_out_lap": n - 1 in SYNTHETIC_STOPS[d] and (d, n) not in UNFLAGGED_OUT_LAPS})
        bounds = [0, *SYNTHETIC_STOPS[d], last_lap[d]]
        for number, (first, last) in enumerate(itertools.pairwise(bounds), start=1):
            raw["stints"].append({
                "session_key": RACE, "meeting_key": MEETING, "driver_number": d,
                "stint_number": number, "lap_start": first + 1,
                "lap_end": last if (d, number) != (27, 3) else 10,
                "compound": COMPOUNDS[(number - 1) % 3],
                "tyre_age_at_start": 3 if number == 1 else 0})
        for n in SYNTHETIC_STOPS[d]:
            raw["pit_stops"].append({
                "session_key": RACE, "meeting_key": MEETING, "driver_number": d,
                "lap_number": n, "date": starts[d, n] + _micro(durations[d, n]),
                "lane_duration": 22.0 + (d % 5) * 0.3 + n * 0.01, "stop_duration": None})
    # SAR's lap 1 has no start: its end is lap 2's start (the position rule's fallback).
    finish[2, 1] = starts[2, 2]

    rc = raw["race_control"]
    rc.extend([
        race_control_row(RACE, MEETING, T0 - timedelta(minutes=5), "GREEN LIGHT - PIT EXIT OPEN",
                         flag="GREEN", category="Flag"),
        race_control_row(RACE, MEETING, leader_start(3) + timedelta(seconds=20),
                         "YELLOW IN TRACK SECTOR 4", flag="YELLOW", category="Flag",
                         scope="Sector"),
        race_control_row(RACE, MEETING, leader_start(5) + timedelta(seconds=40),
                         "VIRTUAL SAFETY CAR DEPLOYED", category="SafetyCar", lap_number=5),
        race_control_row(RACE, MEETING, starts[16, 6] + timedelta(seconds=0.4),
                         "VIRTUAL SAFETY CAR ENDING", category="SafetyCar", lap_number=6),
        race_control_row(RACE, MEETING, leader_start(12) + timedelta(seconds=20),
                         "SAFETY CAR DEPLOYED", category="SafetyCar", lap_number=12),
        race_control_row(RACE, MEETING, leader_start(14) + timedelta(seconds=10),
                         "Safety Car In This Lap", category="SafetyCar", lap_number=14),
        race_control_row(RACE, MEETING, leader_start(17) + timedelta(seconds=30),
                         "RED FLAG", flag="RED", category="Flag", lap_number=17),
        race_control_row(RACE, MEETING, leader_start(17) + timedelta(seconds=600),
                         "SESSION STARTED", category="SessionStatus", lap_number=17),
        race_control_row(RACE, MEETING, leader_start(19) + timedelta(seconds=10),
                         "RED FLAG INFRINGEMENT - CAR 2 (SAR) - NOTED", category="Other",
                         lap_number=19, driver_number=2, scope="Driver"),
        # No date: invisible to a period (f1-api.md: race_control.date can be null).
        race_control_row(RACE, MEETING, None, "SAFETY CAR DEPLOYED", category="SafetyCar"),
        race_control_row(RACE, MEETING, race_end, "CHEQUERED FLAG", flag="CHEQUERED",
                         category="Flag", lap_number=LAPS),
    ])
    raw["positions"].extend(_position_events(RACE, MEETING, finish))
    order = sorted((d for d in SYNTHETIC_DRIVERS if d != 27),
                   key=lambda d: (-last_lap[d], finish[d, last_lap[d]]))
    for place, d in enumerate(order, start=1):
        raw["session_results"].append({
            "session_key": RACE, "meeting_key": MEETING, "driver_number": d, "position": place,
            "number_of_laps": last_lap[d], "dnf": False, "dns": False, "dsq": False})
    raw["session_results"].append({
        "session_key": RACE, "meeting_key": MEETING, "driver_number": 27, "position": None,
        "number_of_laps": 10, "dnf": True, "dns": False, "dsq": False})
    _weather(raw, RACE, MEETING, T0 - timedelta(minutes=10), race_end + timedelta(minutes=5))
    return raw


def as_session(raw: RawSession, session_key: int, name: str, kind: str) -> RawSession:
    """The rows of `raw`'s first session under another session key (and name and type),
    without results, grid or qualifying session: e.g. the race's laps as a practice."""
    copy = RawSession()
    for table in TABLES:
        if table in ("session_results", "starting_grid"):
            continue
        rows = raw[table][:1] if table == "sessions" else raw[table]
        for row in rows:
            changed = dict(row, session_key=session_key)
            if table == "sessions":
                changed.update(session_name=name, session_type=kind)
            copy[table].append(changed)
    return copy


def _weather(raw: RawSession, session_key: int, meeting: int, first: datetime,
             last: datetime) -> None:
    at, i = first, 0
    while at <= last:
        raw["weather"].append({
            "session_key": session_key, "meeting_key": meeting, "date": at,
            "air_temperature": 25.0 + (i % 3) * 0.1, "track_temperature": 40.0 - i * 0.05,
            "humidity": 40.0, "pressure": 1010.0, "rainfall": 0, "wind_direction": 90,
            "wind_speed": 2.0})
        at += timedelta(seconds=60)
        i += 1


# --- Bahrain 2024, from the shared real data ---------------------------------------------

# 2024 car numbers of the drivers in the lap files (f1db race-results.yml has them too).
CAR_NUMBERS = {"VER": 1, "PER": 11, "SAI": 55, "LEC": 16, "RUS": 63, "NOR": 4, "HAM": 44,
               "PIA": 81, "ALO": 14, "STR": 18, "ZHO": 24, "MAG": 20, "RIC": 3, "TSU": 22,
               "ALB": 23, "HUL": 27, "OCO": 31, "GAS": 10, "BOT": 77, "SAR": 2}
BAHRAIN_START = datetime(2024, 3, 2, 15, 3, tzinfo=UTC)


def bahrain_available() -> bool:
    return BAHRAIN_LAPS.is_dir() and BAHRAIN_F1DB.is_dir()


def _number(value: Any) -> float | None:
    return None if value == "None" else float(value)


def bahrain_race() -> RawSession:
    """The 2024 Bahrain Grand Prix (20 drivers x up to 57 laps) as raw rows.

    The lap files have no timestamps: every car's lap 1 starts at the race start (15:03
    UTC) and each lap starts when the previous one ends; a lap without a time advances
    the clock by its sector sum, else by the driver's median lap (its lap_duration stays
    null, as upstream). Stints come from the files' stint and tyre life columns; pit
    stops, grid and classification from f1db (lane_duration = f1db's pit time). Race
    control holds only the green light, yellow flags (from track status 2) and the
    chequered flag: the race had no SC, VSC or red flag."""
    raw = RawSession()
    raw["sessions"].extend([
        _session(BAHRAIN_RACE, "Race", "Race", BAHRAIN_START - timedelta(minutes=3),
                 BAHRAIN_MEETING),
        _session(BAHRAIN_QUALIFYING, "Qualifying", "Qualifying",
                 BAHRAIN_START - timedelta(days=1), BAHRAIN_MEETING)])
    import yaml  # only where the real data is used

    teams = json.loads((BAHRAIN_LAPS / "drivers.json").read_text())["drivers"]
    finish: dict[tuple[int, int], datetime] = {}
    yellow_laps: set[int] = set()
    lap_starts: dict[tuple[int, int], datetime] = {}
    for entry in teams:
        code, d = entry["driver"], CAR_NUMBERS[entry["driver"]]
        raw["drivers"].append({"session_key": BAHRAIN_RACE, "meeting_key": BAHRAIN_MEETING,
                               "driver_number": d, "name_acronym": code,
                               "team_name": entry["team"]})
        data = json.loads((BAHRAIN_LAPS / code / "laptimes.json").read_text())
        times = [_number(t) for t in data["time"]]
        known = sorted(t for t in times if t is not None)
        typical = known[len(known) // 2]
        at = BAHRAIN_START
        stint_rows: dict[int, Row] = {}
        for i, lap_float in enumerate(data["lap"]):
            n = int(lap_float)
            sectors = [_number(data[k][i]) for k in ("s1", "s2", "s3")]
            seconds = times[i]
            clock = seconds if seconds is not None else (
                sum(s for s in sectors if s is not None) if None not in sectors else typical)
            lap_starts[d, n] = at
            raw["laps"].append({
                "session_key": BAHRAIN_RACE, "meeting_key": BAHRAIN_MEETING,
                "driver_number": d, "lap_number": n, "date_start": at,
                "lap_duration": seconds, "duration_sector_1": sectors[0],
                "duration_sector_2": sectors[1], "duration_sector_3": sectors[2],
                "is_pit_out_lap": i > 0 and data["stint"][i] != data["stint"][i - 1]})
            at += _micro(clock)
            finish[d, n] = at
            if "2" in str(data["status"][i]):
                yellow_laps.add(n)
            stint = data["stint"][i]
            if stint not in stint_rows:
                stint_rows[stint] = {
                    "session_key": BAHRAIN_RACE, "meeting_key": BAHRAIN_MEETING,
                    "driver_number": d, "stint_number": stint, "lap_start": n,
                    "compound": data["compound"][i], "tyre_age_at_start": data["life"][i] - 1}
            stint_rows[stint]["lap_end"] = n
        raw["stints"].extend(stint_rows.values())

    for stop in yaml.safe_load((BAHRAIN_F1DB / "pit-stops.yml").read_text()):
        d, n = stop["driverNumber"], stop["lap"]
        raw["pit_stops"].append({
            "session_key": BAHRAIN_RACE, "meeting_key": BAHRAIN_MEETING, "driver_number": d,
            "lap_number": n, "date": finish.get((d, n)),
            "lane_duration": _clock_seconds(str(stop["time"])), "stop_duration": None})
    for place in yaml.safe_load((BAHRAIN_F1DB / "starting-grid-positions.yml").read_text()):
        raw["starting_grid"].append({
            "session_key": BAHRAIN_QUALIFYING, "meeting_key": BAHRAIN_MEETING,
            "driver_number": place["driverNumber"], "position": place["position"]})
    for result in yaml.safe_load((BAHRAIN_F1DB / "race-results.yml").read_text()):
        position = result["position"]
        raw["session_results"].append({
            "session_key": BAHRAIN_RACE, "meeting_key": BAHRAIN_MEETING,
            "driver_number": result["driverNumber"],
            "position": position if isinstance(position, int) else None,
            "number_of_laps": result["laps"] or 0, "dnf": not isinstance(position, int),
            "dns": False, "dsq": False})

    leader = {n: min(at for (_, k), at in lap_starts.items() if k == n)
              for n in {k for _, k in lap_starts}}
    race_end = min(at for (_, n), at in finish.items() if n == max(leader))
    rc = raw["race_control"]
    rc.append(race_control_row(BAHRAIN_RACE, BAHRAIN_MEETING,
                               BAHRAIN_START - timedelta(minutes=5),
                               "GREEN LIGHT - PIT EXIT OPEN", flag="GREEN", category="Flag"))
    for n in sorted(yellow_laps):
        rc.append(race_control_row(BAHRAIN_RACE, BAHRAIN_MEETING,
                                   leader[n] + timedelta(seconds=30), "YELLOW IN TRACK SECTOR 3",
                                   flag="YELLOW", category="Flag", lap_number=n, scope="Sector"))
        rc.append(race_control_row(BAHRAIN_RACE, BAHRAIN_MEETING,
                                   leader[n] + timedelta(seconds=50), "CLEAR IN TRACK SECTOR 3",
                                   flag="CLEAR", category="Flag", lap_number=n, scope="Sector"))
    rc.append(race_control_row(BAHRAIN_RACE, BAHRAIN_MEETING, race_end, "CHEQUERED FLAG",
                               flag="CHEQUERED", category="Flag", lap_number=max(leader)))
    raw["positions"].extend(_position_events(BAHRAIN_RACE, BAHRAIN_MEETING, finish))
    _weather(raw, BAHRAIN_RACE, BAHRAIN_MEETING, BAHRAIN_START - timedelta(minutes=10),
             race_end + timedelta(minutes=5))
    return raw


def _clock_seconds(text: str) -> float:
    """f1db durations: "36.604" or "1:02.345"."""
    minutes, _, seconds = text.rpartition(":")
    return (int(minutes) * 60 if minutes else 0) + float(seconds)


# --- reading a session back for the reference ---------------------------------------------

async def session_inputs(conn: Connection, session_key: int) -> dict[str, Any]:
    """The keyword arguments of reference_metrics for a session, read from the raw
    tables (the grid from the qualifying session of the same meeting, as derive does)."""

    async def rows(sql: str, *args: Any) -> list[Row]:
        return [dict(r) for r in await conn.fetch(sql, *args)]

    session = await conn.fetchrow(
        "SELECT meeting_key, session_name, session_type FROM f1.sessions WHERE session_key = $1",
        session_key)
    grid: list[Row] = []
    if session is not None:
        names = {"Race": ["Qualifying"], "Sprint": ["Sprint Qualifying", "Sprint Shootout"]}
        candidates = await rows(
            "SELECT session_key, session_name, date_start FROM f1.sessions"
            " WHERE meeting_key = $1", session["meeting_key"])
        matching = sorted((c for c in candidates
                           if c["session_name"] in names.get(session["session_name"], [])),
                          key=lambda c: c["date_start"], reverse=True)
        if matching:
            grid = await rows("SELECT driver_number, position FROM f1.starting_grid"
                              " WHERE session_key = $1", matching[0]["session_key"])
    return {
        "laps": await rows("SELECT driver_number, lap_number, date_start, lap_duration,"
                           " is_pit_out_lap FROM f1.laps WHERE session_key = $1", session_key),
        "stints": await rows("SELECT driver_number, stint_number, lap_start, lap_end, compound,"
                             " tyre_age_at_start FROM f1.stints WHERE session_key = $1",
                             session_key),
        "pits": await rows("SELECT driver_number, lap_number FROM f1.pit_stops"
                           " WHERE session_key = $1", session_key),
        "race_control": await rows("SELECT date, message, flag, lap_number FROM f1.race_control"
                                   " WHERE session_key = $1", session_key),
        "results": await rows("SELECT driver_number, position, number_of_laps"
                              " FROM f1.session_results WHERE session_key = $1", session_key),
        "drivers": await rows("SELECT driver_number, team_name FROM f1.drivers"
                              " WHERE session_key = $1", session_key),
        "grid": grid,
        "is_race": session is None or session["session_type"] == "Race",
    }


# --- running derive and reading its output ------------------------------------------------

LAP_COLUMNS = ("stint_number", "compound", "tyre_age", "is_in_lap", "is_out_lap",
               "neutralised", "fuel_kg", "fuel_corrected_s", "valid_for_pace",
               "invalid_reason", "position", "gap_to_leader_s", "delta_field_s",
               "delta_teammate_s", "completeness")
STINT_COLUMNS = ("compound", "laps", "valid_laps", "degradation_s_per_lap", "intercept_s",
                 "r2", "median_pace_s", "completeness")
CYCLE_COLUMNS = ("later_lap", "kind", "succeeded", "gain_s", "neutralised")
DRIVER_COLUMNS = ("race_pace_delta_s", "teammate_delta_s", "laps_led", "positions_gained",
                  "median_pit_loss_s")


def new_run() -> str:
    return f"f1-derive-{uuid.uuid4().hex[:10]}"


async def derive(conn: Connection, session_key: int, run_id: str | None = None,
                 scope: str = "derive") -> DeriveOutcome:
    return await recompute_session(conn, session_key, run_id=run_id or new_run(), scope=scope)


async def derived(conn: Connection, session_key: int) -> dict[str, dict[Any, dict[str, Any]]]:
    """The derived tables of a session, keyed like reference_metrics' output."""
    laps = await conn.fetch("SELECT * FROM f1.lap_metrics WHERE session_key = $1", session_key)
    stints = await conn.fetch("SELECT * FROM f1.stint_metrics WHERE session_key = $1",
                              session_key)
    cycles = await conn.fetch("SELECT * FROM f1.pit_cycles WHERE session_key = $1", session_key)
    drivers = await conn.fetch("SELECT * FROM f1.driver_session_metrics WHERE session_key = $1",
                               session_key)
    return {
        "lap_metrics": {(r["driver_number"], r["lap_number"]): dict(r) for r in laps},
        "stint_metrics": {(r["driver_number"], r["stint_number"]): dict(r) for r in stints},
        "pit_cycles": {(r["earlier_driver"], r["later_driver"], r["earlier_lap"]): dict(r)
                       for r in cycles},
        "driver_metrics": {r["driver_number"]: dict(r) for r in drivers},
    }


async def compare_with_reference(conn: Connection, session_key: int) -> dict[str, list[str]]:
    """Per derived table, the differences between the SQL and the reference."""
    ref = reference_metrics(**await session_inputs(conn, session_key))
    got = await derived(conn, session_key)
    return {
        "lap_metrics": differences(got["lap_metrics"], ref["lap_metrics"], LAP_COLUMNS),
        "stint_metrics": differences(got["stint_metrics"], ref["stint_metrics"], STINT_COLUMNS),
        "pit_cycles": differences(got["pit_cycles"], ref["pit_cycles"], CYCLE_COLUMNS),
        "driver_metrics": differences(got["driver_metrics"], ref["driver_metrics"],
                                      DRIVER_COLUMNS),
    }


async def snapshot(conn: Connection, session_key: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every derived row of the session with its xmin, ordered: equal snapshots mean
    nothing was written."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in ("lap_metrics", "stint_metrics", "pit_cycles", "driver_session_metrics",
                  "anomalies"):
        # Table names from the constant tuple above.
        rows = await conn.fetch(
            f"SELECT xmin::text AS xmin, t::text AS body FROM f1.{table} t"
            " WHERE session_key = $1 ORDER BY t::text", session_key)
        out[table] = [(r["xmin"], r["body"]) for r in rows]
    return out
