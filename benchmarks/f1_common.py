"""What the F1 benchmark and its yardstick share: the `f1.*` tables the raw streams go
to, which streams each session type has, turning upstream items into rows, and reading
the tables back (row counts, checksums).

Deliberately free of pipeworks imports: the yardstick is what someone would write by
hand with asyncio + httpx + asyncpg. `f1_season.py` checks at start that these tables
and columns are those of `activities/f1/endpoints.py`, so the two cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

Row = tuple[Any, ...]
Item = dict[str, Any]
LAPS_BEHIND = re.compile(r"^\+(\d{1,3}) LAPS?$")  # "+1 LAP": a lapped car's gap


def ts(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def gap_parts(gap: Any) -> tuple[float | None, int | None]:
    """(seconds, laps) of a gap: "+N LAP(S)" is N laps, a number is seconds."""
    if isinstance(gap, str):
        match = LAPS_BEHIND.match(gap)
        return (None, int(match.group(1))) if match else (None, None)
    return (gap, None) if isinstance(gap, int | float) else (None, None)


def phases(value: Any) -> tuple[Any, Any, Any]:
    """Q1-Q3 of a qualifying array; a lapped phase gap ("+1 LAP") as unknown seconds."""
    if not isinstance(value, list) or len(value) != 3:
        return None, None, None
    first, second, third = (v if not isinstance(v, str) else None for v in value)
    return first, second, third


def message_key(i: Item) -> str:
    """Race control's natural key as text (the pipeline's `message_key` column)."""
    moment = ts(i.get("date"))
    parts = (moment.astimezone(UTC).isoformat() if moment is not None else "",
             i.get("driver_number"), i.get("lap_number"), i.get("category"), i.get("flag"),
             i.get("scope"), i.get("sector"))
    return "\x1f".join("" if p is None else str(p) for p in parts)


def _meeting(i: Item) -> Row:
    g = i.get
    return (i["meeting_key"], i["year"], i["meeting_name"], g("meeting_official_name"),
            g("location"), g("country_key"), g("country_code"), g("country_name"),
            g("circuit_key"), g("circuit_short_name"), g("circuit_type"), g("gmt_offset"),
            ts(g("date_start")), ts(g("date_end")), bool(g("is_cancelled", False)))


def _session(i: Item) -> Row:
    g = i.get
    return (i["session_key"], i["meeting_key"], i["year"], i["session_name"],
            i["session_type"], ts(i["date_start"]), ts(i["date_end"]), g("gmt_offset"),
            bool(g("is_cancelled", False)), g("circuit_key"), g("circuit_short_name"),
            g("country_key"), g("country_code"), g("country_name"), g("location"))


def _driver(i: Item) -> Row:
    g = i.get
    return (i["session_key"], i["driver_number"], i["meeting_key"], g("broadcast_name"),
            g("full_name"), g("first_name"), g("last_name"), g("name_acronym"),
            g("team_name"), g("team_colour"), g("headshot_url"))


def _lap(i: Item) -> Row:
    g = i.get
    return (i["session_key"], i["driver_number"], i["lap_number"], i["meeting_key"],
            ts(g("date_start")), g("lap_duration"), g("duration_sector_1"),
            g("duration_sector_2"), g("duration_sector_3"), g("i1_speed"), g("i2_speed"),
            g("st_speed"), bool(i["is_pit_out_lap"]))


def _stint(i: Item) -> Row:
    g = i.get
    return (i["session_key"], i["driver_number"], i["stint_number"], i["meeting_key"],
            i["lap_start"], i["lap_end"], g("compound"), g("tyre_age_at_start"))


def _pit(i: Item) -> Row:
    g = i.get
    return (i["session_key"], i["driver_number"], i["lap_number"], i["meeting_key"],
            ts(g("date")), g("lane_duration"), g("stop_duration"))


def _weather(i: Item) -> Row:
    g = i.get
    return (i["session_key"], ts(i["date"]), i["meeting_key"], g("air_temperature"),
            g("track_temperature"), g("humidity"), g("pressure"), g("rainfall"),
            g("wind_direction"), g("wind_speed"))


def _race_control(i: Item) -> Row:
    g = i.get
    return (i["session_key"], message_key(i), i["meeting_key"], ts(g("date")),
            g("category"), g("flag"), g("scope"), g("sector"), g("driver_number"),
            g("lap_number"), g("qualifying_phase"), g("message"))


def _position(i: Item) -> Row:
    return (i["session_key"], i["driver_number"], ts(i["date"]), i["meeting_key"],
            i["position"])


def _interval(i: Item) -> Row:
    # The leader (neither a gap nor an interval) is 0 seconds; another null is unknown.
    gap, interval = i.get("gap_to_leader"), i.get("interval")
    leader = gap in (None, 0) and interval in (None, 0)
    gap_sl = (0.0, None) if leader else gap_parts(gap)
    interval_sl = (0.0, None) if leader else gap_parts(interval)
    return (i["session_key"], i["driver_number"], ts(i["date"]), i["meeting_key"],
            *gap_sl, *interval_sl)


def _overtake(i: Item) -> Row:
    return (i["session_key"], ts(i["date"]), i["overtaking_driver_number"],
            i["overtaken_driver_number"], i["meeting_key"], i["position"])


def _session_result(i: Item) -> Row:
    duration, gap = i.get("duration"), i.get("gap_to_leader")
    gap_sl = gap_parts(gap) if not isinstance(gap, list) else (None, None)
    return (i["session_key"], i["driver_number"], i["meeting_key"], i.get("position"),
            i["number_of_laps"], bool(i["dnf"]), bool(i["dns"]), bool(i["dsq"]),
            duration if not isinstance(duration, list) else None, *phases(duration),
            *gap_sl, *phases(gap), i.get("points"))


def _starting_grid(i: Item) -> Row:
    return (i["session_key"], i["driver_number"], i["meeting_key"], i.get("position"),
            i.get("lap_duration"))


@dataclass(frozen=True)
class Stream:
    """One upstream endpoint and the `f1.*` table its items go to."""

    name: str                          # the endpoint: /v1/<name>
    table: str
    keys: tuple[str, ...]
    columns: tuple[str, ...]           # in the order `row` returns them
    row: Callable[[Item], Row]
    session_types: frozenset[str] | None = None   # None: every session type

    @property
    def path(self) -> str:
        return f"/v1/{self.name}"

    def key_of(self, row: Row) -> Row:
        return row[:len(self.keys)]  # every table's key columns come first


def _stream(name: str, table: str, keys: int, columns: str, row: Callable[[Item], Row],
            session_types: frozenset[str] | None = None) -> Stream:
    cols = tuple(columns.split())
    return Stream(name, f"f1.{table}", cols[:keys], cols, row, session_types)


RACE = frozenset({"Race"})
QUALIFYING = frozenset({"Qualifying"})

MEETINGS = _stream(
    "meetings", "meetings", 1,
    "meeting_key year meeting_name meeting_official_name location country_key country_code"
    " country_name circuit_key circuit_short_name circuit_type gmt_offset date_start"
    " date_end is_cancelled", _meeting)
SESSIONS = _stream(
    "sessions", "sessions", 1,
    "session_key meeting_key year session_name session_type date_start date_end gmt_offset"
    " is_cancelled circuit_key circuit_short_name country_key country_code country_name"
    " location", _session)
# A session's streams, in the order the pipeline stages them.
SESSION_STREAMS = (
    _stream("drivers", "drivers", 2,
            "session_key driver_number meeting_key broadcast_name full_name first_name"
            " last_name name_acronym team_name team_colour headshot_url", _driver),
    _stream("laps", "laps", 3,
            "session_key driver_number lap_number meeting_key date_start lap_duration"
            " duration_sector_1 duration_sector_2 duration_sector_3 i1_speed i2_speed"
            " st_speed is_pit_out_lap", _lap),
    _stream("stints", "stints", 3,
            "session_key driver_number stint_number meeting_key lap_start lap_end compound"
            " tyre_age_at_start", _stint),
    _stream("pit", "pit_stops", 3,
            "session_key driver_number lap_number meeting_key date lane_duration"
            " stop_duration", _pit),
    _stream("weather", "weather", 2,
            "session_key date meeting_key air_temperature track_temperature humidity"
            " pressure rainfall wind_direction wind_speed", _weather),
    _stream("race_control", "race_control", 2,
            "session_key message_key meeting_key date category flag scope sector"
            " driver_number lap_number qualifying_phase message", _race_control),
    _stream("position", "positions", 3,
            "session_key driver_number date meeting_key position", _position),
    _stream("intervals", "intervals", 3,
            "session_key driver_number date meeting_key gap_to_leader_s gap_to_leader_laps"
            " interval_s interval_laps", _interval, RACE),
    _stream("overtakes", "overtakes", 4,
            "session_key date overtaking_driver_number overtaken_driver_number meeting_key"
            " position", _overtake, RACE),
    _stream("session_result", "session_results", 2,
            "session_key driver_number meeting_key position number_of_laps dnf dns dsq"
            " duration_s duration_q1 duration_q2 duration_q3 gap_to_leader_s"
            " gap_to_leader_laps gap_to_leader_q1 gap_to_leader_q2 gap_to_leader_q3 points",
            _session_result),
    _stream("starting_grid", "starting_grid", 2,
            "session_key driver_number meeting_key position lap_duration", _starting_grid,
            QUALIFYING),
)
RAW_STREAMS = (MEETINGS, SESSIONS, *SESSION_STREAMS)
RAW_TABLES = tuple(s.table for s in RAW_STREAMS)


def streams_for(session_type: str) -> list[Stream]:
    return [s for s in SESSION_STREAMS
            if s.session_types is None or session_type in s.session_types]


async def row_counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {t: int(await conn.fetchval(f"SELECT count(*) FROM {t}"))
            for t in RAW_TABLES}


async def checksums(conn: asyncpg.Connection) -> dict[str, str]:
    """md5 over every row of each raw table (its data columns, not the pipeline's
    `load_id`), in a fixed order: equal tables, equal sums."""
    sums = {}
    for s in RAW_STREAMS:
        cols = ", ".join(s.columns)
        sums[s.table] = str(await conn.fetchval(
            f"SELECT coalesce(md5(string_agg(r::text, '|' ORDER BY r::text)), '')"
            f" FROM (SELECT {cols} FROM {s.table}) r"))
    return sums
