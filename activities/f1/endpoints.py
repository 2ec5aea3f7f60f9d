"""The upstream's endpoints (f1-api.md, Endpoints used): what each one is called, how
it is filtered incrementally, which sessions have it, and how its items become rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from activities.f1 import models as m
from pipeworks.merge import TableSpec

Row = tuple[Any, ...]
LINEAGE = "load_id"


def _spec(table: str, key: tuple[str, ...] | str, columns: str) -> TableSpec:
    return TableSpec(f"f1.{table}", key, tuple(columns.split()), lineage=LINEAGE)



# A session's laps before the first lap number missing for every driver ($1:
# session_key): the laps watermark stops there (interfaces.md), so such a gap is read
# again on every incremental pull until it fills. Followed by a query of `settled_laps`.
SETTLED_LAPS_CTE = """
    WITH laps AS (SELECT driver_number, lap_number, date_start FROM f1.laps
                  WHERE session_key = $1),
    first_gap AS (
        SELECT min(n) AS lap_number
        FROM generate_series(1, (SELECT max(lap_number) FROM laps)) AS n
        WHERE NOT EXISTS (SELECT 1 FROM laps WHERE laps.lap_number = n)),
    settled_laps AS (
        SELECT * FROM laps
        WHERE lap_number < coalesce((SELECT lap_number FROM first_gap), 2147483647))
"""

@dataclass(frozen=True)
class Endpoint:
    name: str                        # the stream's entity name, and the path's last part
    path: str
    model: type[m.F1Item]
    spec: TableSpec
    row: Callable[[Any], Row]        # a validated item -> its row, in `spec.columns` order
    # The timestamp an incremental pull filters on (`<field>>=`); None: full refresh.
    time_field: str | None = None
    # The session types that have the endpoint (None: all of them).
    session_types: frozenset[str] | None = None
    # Large: pulled in a date window that narrows when the upstream struggles.
    windowed: bool = False

    @property
    def newest_sql(self) -> str:
        """The newest timestamp of a session's rows ($1: session_key)."""
        assert self.time_field is not None
        # Identifiers from this module's constants, never from data.
        return (f"SELECT max({self.time_field}) FROM {self.spec.name}"  # noqa: S608
                " WHERE session_key = $1")

    @property
    def key_fields(self) -> tuple[str, ...]:
        """The item fields of the natural key (the table's key, but derived columns)."""
        return tuple(k for k in self.spec.keys if k != "message_key")


def _meeting(i: m.Meeting) -> Row:
    return (i.meeting_key, i.year, i.meeting_name, i.meeting_official_name, i.location,
            i.country_key, i.country_code, i.country_name, i.circuit_key,
            i.circuit_short_name, i.circuit_type, i.gmt_offset, i.date_start, i.date_end,
            i.is_cancelled)


def _session(i: m.Session) -> Row:
    return (i.session_key, i.meeting_key, i.year, i.session_name, i.session_type,
            i.date_start, i.date_end, i.gmt_offset, i.is_cancelled, i.circuit_key,
            i.circuit_short_name, i.country_key, i.country_code, i.country_name, i.location)


def _driver(i: m.Driver) -> Row:
    return (i.session_key, i.driver_number, i.meeting_key, i.broadcast_name, i.full_name,
            i.first_name, i.last_name, i.name_acronym, i.team_name, i.team_colour,
            i.headshot_url)


def _lap(i: m.Lap) -> Row:
    return (i.session_key, i.driver_number, i.lap_number, i.meeting_key, i.date_start,
            i.lap_duration, i.duration_sector_1, i.duration_sector_2, i.duration_sector_3,
            i.i1_speed, i.i2_speed, i.st_speed, i.is_pit_out_lap)


def _stint(i: m.Stint) -> Row:
    return (i.session_key, i.driver_number, i.stint_number, i.meeting_key, i.lap_start,
            i.lap_end, i.compound, i.tyre_age_at_start)


def _pit(i: m.Pit) -> Row:
    return (i.session_key, i.driver_number, i.lap_number, i.meeting_key, i.date,
            i.lane_duration, i.stop_duration)


def _weather(i: m.Weather) -> Row:
    return (i.session_key, i.date, i.meeting_key, i.air_temperature, i.track_temperature,
            i.humidity, i.pressure, i.rainfall, i.wind_direction, i.wind_speed)


def message_key(i: m.RaceControlMessage) -> str:
    """The natural key's canonical text: nulls compare equal (f1-api.md), and one
    moment has one text whatever offset the upstream wrote it with."""
    moment = i.date.astimezone(UTC).isoformat() if i.date is not None else ""
    parts = (moment, i.driver_number, i.lap_number, i.category, i.flag, i.scope, i.sector)
    return "\x1f".join("" if p is None else str(p) for p in parts)


def _race_control(i: m.RaceControlMessage) -> Row:
    return (i.session_key, message_key(i), i.meeting_key, i.date, i.category, i.flag,
            i.scope, i.sector, i.driver_number, i.lap_number, i.qualifying_phase, i.message)


def _position(i: m.Position) -> Row:
    return (i.session_key, i.driver_number, i.date, i.meeting_key, i.position)


def _interval(i: m.Interval) -> Row:
    # The leader's null or 0 is 0 seconds (interfaces.md, Intervals); the leader is the
    # car with neither a gap to the leader nor an interval. Another car's null stays
    # unknown.
    leader = i.gap_to_leader in (None, 0) and i.interval in (None, 0)
    gap = (0.0, None) if leader else m.gap_parts(i.gap_to_leader)
    interval = (0.0, None) if leader else m.gap_parts(i.interval)
    return (i.session_key, i.driver_number, i.date, i.meeting_key, *gap, *interval)


def _overtake(i: m.Overtake) -> Row:
    return (i.session_key, i.date, i.overtaking_driver_number, i.overtaken_driver_number,
            i.meeting_key, i.position)


def _phases(value: Any) -> tuple[Any, Any, Any]:
    """Q1-Q3 of a qualifying array, a lapped phase gap ("+1 LAP") as unknown seconds."""
    if not isinstance(value, list):
        return None, None, None
    seconds = [v if not isinstance(v, str) else None for v in value]
    return seconds[0], seconds[1], seconds[2]


def _session_result(i: m.SessionResult) -> Row:
    duration_s = i.duration if not isinstance(i.duration, list) else None
    gap_s, gap_laps = (None, None)
    if i.gap_to_leader is not None and not isinstance(i.gap_to_leader, list):
        gap_s, gap_laps = m.gap_parts(i.gap_to_leader)
    return (i.session_key, i.driver_number, i.meeting_key, i.position, i.number_of_laps,
            i.dnf, i.dns, i.dsq, duration_s, *_phases(i.duration), gap_s, gap_laps,
            *_phases(i.gap_to_leader), i.points)


def _starting_grid(i: m.StartingGrid) -> Row:
    return (i.session_key, i.driver_number, i.meeting_key, i.position, i.lap_duration)


RACE = frozenset({"Race"})
QUALIFYING = frozenset({"Qualifying"})

MEETINGS = Endpoint("meetings", "/v1/meetings", m.Meeting, _spec(
    "meetings", "meeting_key",
    "meeting_key year meeting_name meeting_official_name location country_key country_code"
    " country_name circuit_key circuit_short_name circuit_type gmt_offset date_start"
    " date_end is_cancelled"), _meeting)
SESSIONS = Endpoint("sessions", "/v1/sessions", m.Session, _spec(
    "sessions", "session_key",
    "session_key meeting_key year session_name session_type date_start date_end gmt_offset"
    " is_cancelled circuit_key circuit_short_name country_key country_code country_name"
    " location"), _session)

# A session's streams, in the order they are staged.
SESSION_ENDPOINTS = (
    Endpoint("drivers", "/v1/drivers", m.Driver, _spec(
        "drivers", ("session_key", "driver_number"),
        "session_key driver_number meeting_key broadcast_name full_name first_name last_name"
        " name_acronym team_name team_colour headshot_url"), _driver),
    Endpoint("laps", "/v1/laps", m.Lap, _spec(
        "laps", ("session_key", "driver_number", "lap_number"),
        "session_key driver_number lap_number meeting_key date_start lap_duration"
        " duration_sector_1 duration_sector_2 duration_sector_3 i1_speed i2_speed st_speed"
        " is_pit_out_lap"), _lap, time_field="date_start"),
    Endpoint("stints", "/v1/stints", m.Stint, _spec(
        "stints", ("session_key", "driver_number", "stint_number"),
        "session_key driver_number stint_number meeting_key lap_start lap_end compound"
        " tyre_age_at_start"), _stint),
    Endpoint("pit", "/v1/pit", m.Pit, _spec(
        "pit_stops", ("session_key", "driver_number", "lap_number"),
        "session_key driver_number lap_number meeting_key date lane_duration stop_duration"),
        _pit, time_field="date"),
    Endpoint("weather", "/v1/weather", m.Weather, _spec(
        "weather", ("session_key", "date"),
        "session_key date meeting_key air_temperature track_temperature humidity pressure"
        " rainfall wind_direction wind_speed"), _weather, time_field="date"),
    Endpoint("race_control", "/v1/race_control", m.RaceControlMessage, _spec(
        "race_control", ("session_key", "message_key"),
        "session_key message_key meeting_key date category flag scope sector driver_number"
        " lap_number qualifying_phase message"), _race_control, time_field="date"),
    Endpoint("position", "/v1/position", m.Position, _spec(
        "positions", ("session_key", "driver_number", "date"),
        "session_key driver_number date meeting_key position"), _position,
        time_field="date", windowed=True),
    Endpoint("intervals", "/v1/intervals", m.Interval, _spec(
        "intervals", ("session_key", "driver_number", "date"),
        "session_key driver_number date meeting_key gap_to_leader_s gap_to_leader_laps"
        " interval_s interval_laps"), _interval, time_field="date", session_types=RACE,
        windowed=True),
    Endpoint("overtakes", "/v1/overtakes", m.Overtake, _spec(
        "overtakes", ("session_key", "date", "overtaking_driver_number",
                      "overtaken_driver_number"),
        "session_key date overtaking_driver_number overtaken_driver_number meeting_key"
        " position"), _overtake, time_field="date", session_types=RACE),
    Endpoint("session_result", "/v1/session_result", m.SessionResult, _spec(
        "session_results", ("session_key", "driver_number"),
        "session_key driver_number meeting_key position number_of_laps dnf dns dsq"
        " duration_s duration_q1 duration_q2 duration_q3 gap_to_leader_s gap_to_leader_laps"
        " gap_to_leader_q1 gap_to_leader_q2 gap_to_leader_q3 points"), _session_result),
    Endpoint("starting_grid", "/v1/starting_grid", m.StartingGrid, _spec(
        "starting_grid", ("session_key", "driver_number"),
        "session_key driver_number meeting_key position lap_duration"), _starting_grid,
        session_types=QUALIFYING),
)

BY_NAME = {e.name: e for e in (MEETINGS, SESSIONS, *SESSION_ENDPOINTS)}

# The order a rollback undoes the tables: derived ones first (they follow the raw rows
# they were computed from), then the raw ones in reverse order of writing.
RAW_UNDO_ORDER = tuple(e.spec for e in reversed((MEETINGS, SESSIONS, *SESSION_ENDPOINTS)))


def for_session_type(session_type: str) -> list[Endpoint]:
    return [e for e in SESSION_ENDPOINTS
            if e.session_types is None or session_type in e.session_types]

