"""`pipeworks f1 report KEY`: a session's analytics as rich tables or one JSON document
(stints with degradation, pace deltas, pit cycles, quality checks, stream states), and
with `--lap` the lineage of one lap: the load and run that last wrote it and every
change runs made to it, with its before-images."""

from __future__ import annotations

from typing import Any

import asyncpg
from rich.console import Console
from rich.table import Table

from pipeworks.db import Connection, connect

_SESSION = """
    SELECT s.session_key, s.session_name, s.session_type, s.date_start, s.year,
           s.meeting_key, m.meeting_name
    FROM f1.sessions s LEFT JOIN f1.meetings m USING (meeting_key)
    WHERE s.session_key = $1
"""
_STINTS = """
    SELECT sm.driver_number, coalesce(d.name_acronym, '#' || sm.driver_number) AS driver,
           sm.stint_number, sm.compound, sm.laps, sm.valid_laps,
           sm.degradation_s_per_lap, sm.intercept_s, sm.r2, sm.median_pace_s,
           sm.completeness, sm.metric_version
    FROM f1.stint_metrics sm
    LEFT JOIN f1.drivers d ON d.session_key = sm.session_key
                          AND d.driver_number = sm.driver_number
    WHERE sm.session_key = $1 ORDER BY sm.driver_number, sm.stint_number
"""
_PACE = """
    SELECT dm.driver_number, coalesce(d.name_acronym, '#' || dm.driver_number) AS driver,
           d.team_name, dm.race_pace_delta_s, dm.teammate_delta_s, dm.laps_led,
           dm.positions_gained, dm.median_pit_loss_s, dm.metric_version
    FROM f1.driver_session_metrics dm
    LEFT JOIN f1.drivers d ON d.session_key = dm.session_key
                          AND d.driver_number = dm.driver_number
    WHERE dm.session_key = $1 ORDER BY dm.race_pace_delta_s NULLS LAST, dm.driver_number
"""
_CYCLES = """
    SELECT coalesce(a.name_acronym, '#' || c.earlier_driver) AS earlier,
           coalesce(b.name_acronym, '#' || c.later_driver) AS later,
           c.earlier_driver, c.later_driver, c.earlier_lap, c.later_lap, c.kind,
           c.succeeded, c.gain_s, c.neutralised
    FROM f1.pit_cycles c
    LEFT JOIN f1.drivers a ON a.session_key = c.session_key
                          AND a.driver_number = c.earlier_driver
    LEFT JOIN f1.drivers b ON b.session_key = c.session_key AND b.driver_number = c.later_driver
    WHERE c.session_key = $1 ORDER BY c.earlier_lap, c.earlier_driver
"""
# The latest result of each check.
_QUALITY = """
    SELECT DISTINCT ON (check_id) check_id, severity, passed, detail, run_id, checked_at
    FROM f1.quality_checks WHERE session_key = $1 ORDER BY check_id, id DESC
"""
_STREAMS = """
    SELECT endpoint, outcome, watermark, rows_seen, detail, run_id, updated_at
    FROM f1.stream_state WHERE session_key = $1 ORDER BY endpoint
"""
_LAP = """
    SELECT l.lap_duration, l.date_start, l.load_id, r.workflow_id, r.run_id, r.status,
           lo.staged_at
    FROM f1.laps l
    LEFT JOIN pipeline.loads lo ON lo.load_id = l.load_id
    LEFT JOIN pipeline.runs r ON r.run_id = lo.run_id
    WHERE l.session_key = $1 AND l.driver_number = $2 AND l.lap_number = $3
"""
# Every change of the lap: its own change rows, and the insert changes holding its key.
_LAP_CHANGES = """
    WITH lap AS (SELECT jsonb_build_array($1::int, $2::int, $3::int)::text AS row_key)
    SELECT c.created_at, c.op, c.before, c.compensated_at, c.run_id, r.workflow_id
    FROM pipeline.changes c CROSS JOIN lap
    LEFT JOIN pipeline.runs r ON r.run_id = c.run_id
    WHERE c.table_name = 'f1.laps'
      AND (c.row_key = lap.row_key OR lap.row_key = ANY(c.row_keys))
    ORDER BY c.id
"""


def _plain(record: asyncpg.Record) -> dict[str, Any]:
    return {k: (float(v) if hasattr(v, "as_tuple") else v) for k, v in record.items()}


async def session_report(dsn: str, session_key: int, lap: tuple[int, int] | None = None
                         ) -> dict[str, Any] | None:
    conn = await connect(dsn)
    try:
        return await session_report_on(conn, session_key, lap)
    finally:
        await conn.close()


async def session_report_on(conn: Connection, session_key: int,
                            lap: tuple[int, int] | None = None) -> dict[str, Any] | None:
    """The report document on an open connection (the CLI's own, or one borrowed from the
    API's pool: that pool must decode json/jsonb as pipeworks.db's connections do, so
    the document is the same). None when the session is not in f1.sessions."""
    session = await conn.fetchrow(_SESSION, session_key)
    if session is None:
        return None
    document: dict[str, Any] = {"session": _plain(session)}
    for name, query in (("stints", _STINTS), ("pace", _PACE), ("pit_cycles", _CYCLES),
                        ("quality_checks", _QUALITY), ("streams", _STREAMS)):
        document[name] = [_plain(r) for r in await conn.fetch(query, session_key)]
    if lap is not None:
        row = await conn.fetchrow(_LAP, session_key, *lap)
        document["lap"] = {
            "driver_number": lap[0], "lap_number": lap[1],
            "current": _plain(row) if row is not None else None,
            "changes": [_plain(r) for r in await conn.fetch(_LAP_CHANGES, session_key,
                                                             *lap)]}
    return document


def _number(value: Any, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{float(value):+.{digits}f}" if signed else f"{float(value):.{digits}f}"


def render(console: Console, document: dict[str, Any]) -> None:
    session = document["session"]
    console.print(f"[bold]{session.get('meeting_name') or session['meeting_key']}, "
                  f"{session['session_name']}[/] (session {session['session_key']}, "
                  f"{session['date_start']:%Y-%m-%d %H:%M} UTC)", highlight=False)
    stints = Table(title="Stints: degradation = slope of fuel-corrected lap time on tyre age")
    for column in ("driver", "stint", "compound", "laps", "valid", "s/lap", "r²",
                   "median pace s", "note"):
        stints.add_column(column, justify="left" if column in ("driver", "compound", "note")
                          else "right")
    for s in document["stints"]:
        stints.add_row(s["driver"], str(s["stint_number"]), s["compound"] or "-",
                       str(s["laps"]), str(s["valid_laps"]),
                       _number(s["degradation_s_per_lap"], 4, signed=True),
                       _number(s["r2"], 2), _number(s["median_pace_s"]),
                       "" if s["completeness"] == "complete" else s["completeness"])
    console.print(stints)
    pace = Table(title="Pace deltas (s; negative is faster)")
    for column in ("driver", "team", "vs field", "vs teammate", "laps led",
                   "positions gained", "median pit loss s"):
        pace.add_column(column, justify="left" if column in ("driver", "team") else "right")
    for p in document["pace"]:
        pace.add_row(p["driver"], p["team_name"] or "-",
                     _number(p["race_pace_delta_s"], signed=True),
                     _number(p["teammate_delta_s"], signed=True), str(p["laps_led"]),
                     "-" if p["positions_gained"] is None else f"{p['positions_gained']:+d}",
                     _number(p["median_pit_loss_s"], 2))
    console.print(pace)
    cycles = Table(title="Pit cycles")
    for column in ("earlier", "lap", "later", "lap ", "kind", "outcome", "gain s", "neutralised"):
        cycles.add_column(column)
    for c in document["pit_cycles"]:
        cycles.add_row(c["earlier"], str(c["earlier_lap"]), c["later"], str(c["later_lap"]),
                       c["kind"], "succeeded" if c["succeeded"] else "failed",
                       _number(c["gain_s"], 2, signed=True), "yes" if c["neutralised"] else "")
    console.print(cycles)
    failed = [q for q in document["quality_checks"] if not q["passed"]]
    quality = Table(title=f"Failed quality checks ({len(failed)} of "
                          f"{len(document['quality_checks'])})")
    for column in ("check", "severity", "detail"):
        quality.add_column(column)
    for q in failed:
        quality.add_row(q["check_id"], q["severity"], str(q["detail"])[:120])
    console.print(quality)
    if "lap" in document:
        _render_lap(console, document["lap"])


def _render_lap(console: Console, lap: dict[str, Any]) -> None:
    current = lap["current"]
    title = f"Lap {lap['lap_number']} of driver {lap['driver_number']}"
    if current is None:
        console.print(f"{title}: not in f1.laps")
    else:
        console.print(f"{title}: {_number(current['lap_duration'])} s, last written by load "
                      f"{current['load_id']} (run {current['run_id']} of "
                      f"{current['workflow_id']}, staged {current['staged_at']})",
                      highlight=False)
    changes = Table(title="Its changes (before-images)")
    for column in ("when", "op", "run", "workflow", "before", "undone"):
        changes.add_column(column)
    for c in lap["changes"]:
        before = c["before"] or {}
        changes.add_row(f"{c['created_at']:%Y-%m-%d %H:%M:%S}", c["op"], c["run_id"],
                        c["workflow_id"] or "-",
                        "-" if not before else f"lap_duration {before.get('lap_duration')}",
                        "yes" if c["compensated_at"] else "")
    console.print(changes)
