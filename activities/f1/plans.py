"""Which streams a session's pull reads, and from where (f1-api.md, "How a client
pulls a session"): full refreshes for what has no timestamp, date filters from the
merged data's watermark for the rest, date windows for the big streams."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from activities.f1.endpoints import (
    MEETINGS,
    SESSIONS,
    SETTLED_LAPS_CTE,
    Endpoint,
    for_session_type,
)
from pipeworks.db import Connection
from pipeworks.streams import StreamSpec

# Rows of timestamped streams change for a while after they first appear (a pit row
# gains its lane duration, an interval is re-emitted): pulls start this far back.
OVERLAP = timedelta(seconds=60)
# Big streams of a whole session are asked for in this span around its schedule
# (sessions run past their scheduled end; red flags stop them for hours): one window,
# which halves when the upstream struggles (f1-api.md, Errors), and stays narrowed for
# the rest of the stream. Each request counts against the upstream's 30 per 10 s.
BEFORE_START = timedelta(minutes=15)
AFTER_END = timedelta(hours=3)
OVERRUN = timedelta(hours=24)
# Once a session is this far past its scheduled end, an incremental pull re-reads the
# streams whose rows may have no date (invisible to `date>=`) in full.
OVER_AFTER = timedelta(hours=2)
UNDATED = frozenset({"pit", "race_control"})
# Laps re-read at least this many laps behind the watermark (a lap keeps changing for
# about a lap after it starts).
LAP_OVERLAP = 2

# The watermark of merged rows, per stream: read from the rows themselves, so that an
# undone run's rows are read again (its recorded state stays, as an audit trail). The
# laps watermark stops before the first lap number missing for every driver.
# Per driver: the start of his last settled lap minus the overlap; the earliest of them
# (a slow driver's long lap started before the leader's). Constants only, no data.
_LAPS_START = SETTLED_LAPS_CTE + """,
    settled AS (
        SELECT driver_number, max(lap_number) AS lap_number FROM settled_laps
        WHERE date_start IS NOT NULL GROUP BY driver_number)
    SELECT min(l.date_start) FROM laps l JOIN settled s USING (driver_number)
    WHERE l.lap_number >= s.lap_number - $2 AND l.date_start IS NOT NULL
"""  # noqa: S608


@dataclass
class SessionHeader:
    session_key: int
    meeting_key: int
    year: int
    session_name: str
    session_type: str
    date_start: datetime
    date_end: datetime
    is_cancelled: bool


async def read_header(conn: Connection, session_key: int) -> SessionHeader | None:
    row = await conn.fetchrow(
        "SELECT session_key, meeting_key, year, session_name, session_type, date_start,"
        " date_end, is_cancelled FROM f1.sessions WHERE session_key = $1", session_key)
    return SessionHeader(**dict(row)) if row is not None else None


def scope_of(session_key: int) -> str:
    return f"session:{session_key}"


def header_streams(session_key: int, run_id: str, known: SessionHeader | None
                   ) -> list[StreamSpec]:
    """The session's own `f1.sessions` row (a session sync upserts it, deletes nothing),
    asked for with the contract's required filter (`meeting_key`) when the calendar
    told it already; a session never seen is asked for by its key alone."""
    params = {"session_key": str(session_key)}
    if known is not None:
        params = {"meeting_key": str(known.meeting_key), **params}
    return [_spec(SESSIONS, session_key, run_id, params)]


def meeting_stream(header: SessionHeader, run_id: str) -> StreamSpec:
    return _spec(MEETINGS, header.session_key, run_id,
                 {"year": str(header.year), "meeting_key": str(header.meeting_key)})


def calendar_streams(year: int, run_id: str, full: bool) -> list[StreamSpec]:
    """A season's meetings and sessions: refreshes of the year (a full one deletes what
    the upstream no longer lists, but never a session that has timing rows)."""
    params = {"year": str(year)}
    return [StreamSpec(e.name, e.path, params,
                       {"run_id": run_id, "delete": "year" if full else None,
                        "year": str(year)}, pagination="array")
            for e in (MEETINGS, SESSIONS)]


async def session_streams(conn: Connection, header: SessionHeader, run_id: str, *,
                          full: bool, now: datetime, meeting: bool = True,
                          timeless: bool = True) -> list[StreamSpec]:
    """Every stream of the session (after its meeting's row, with `meeting`). A live
    poll may leave out the meeting and, with `timeless` False, the streams without a
    timestamp (full refreshes every time: the upstream's 30 requests per 10 s)."""
    streams = [meeting_stream(header, run_id)] if meeting else []
    params = {"session_key": str(header.session_key)}
    window_end = header.date_end + AFTER_END
    if now < header.date_end + OVERRUN:
        # A session overrunning its end by hours (a long red flag) is read up to now.
        window_end = max(window_end, now + OVERLAP)
    over = now > header.date_end + OVER_AFTER
    for endpoint in for_session_type(header.session_type):
        if endpoint.time_field is None and not timeless and not full:
            continue
        spec = _spec(endpoint, header.session_key, run_id, params, delete="session")
        start = None
        if not full and not (over and endpoint.name in UNDATED):
            start = await _incremental_start(conn, endpoint, header.session_key)
        if start is not None:
            spec.fetch_options = _window(endpoint.time_field, start,
                                         window_end if endpoint.windowed else None)
        elif endpoint.windowed:
            lower = header.date_start - BEFORE_START
            spec.fetch_options = _window(endpoint.time_field, lower, window_end)
            # A full pull owns the rows of its window only.
            spec.stage_options.update(delete="window", window_start=lower.isoformat(),
                                      window_end=window_end.isoformat())
        streams.append(spec)
    return streams


def _window(field: str | None, start: datetime, end: datetime | None
            ) -> dict[str, str | None]:
    assert field is not None
    return {"window_field": field, "window_start": start.isoformat(),
            "window_end": end.isoformat() if end is not None else None}


async def _incremental_start(conn: Connection, endpoint: Endpoint, session_key: int
                             ) -> datetime | None:
    """Where an incremental pull of the stream starts; None: from the beginning (it has
    no timestamp, or nothing merged yet)."""
    if endpoint.time_field is None:
        return None
    if endpoint.name == "laps":
        start: datetime | None = await conn.fetchval(_LAPS_START, session_key, LAP_OVERLAP)
        return start
    newest: datetime | None = await conn.fetchval(endpoint.newest_sql, session_key)
    return newest - OVERLAP if newest is not None else None


def _spec(endpoint: Endpoint, session_key: int, run_id: str, params: dict[str, str],
          delete: str | None = None) -> StreamSpec:
    options: dict[str, str | None] = {"run_id": run_id, "session_key": str(session_key),
                                      "delete": delete}
    return StreamSpec(endpoint.name, endpoint.path, dict(params), options, pagination="array")
