"""The data quality checks of one session, each a query and a verdict (quality.py runs
them and records the results). Check ids are `<dimension>.<what>`.

Choices where the brief is silent:
- completeness.laps expects laps 1..number_of_laps of every driver in session_results
  but those who did not start (a retired driver's completed laps are as expected as a
  classified one's); with no results yet, each driver's laps 1..his highest;
- a stint with lap_end < lap_start (retired on its out-lap, f1-api.md) covers its
  lap_start;
- consistency.positions compares positions at one instant per lap number n, the
  leader's completion of lap n (the earliest end of lap n, as derive computes it: the
  lap's end, else the start of the driver's next lap): the drivers with a lap n row,
  each at his latest f1.positions event at or before that instant, may not share a
  position. (Each driver at his own end of lap n would flag legitimate changes between
  two drivers' lap ends, such as a retirement moving the cars behind up.)
- timeliness (live sessions only) checks the streams with a steady cadence against a
  maximum age; race control and pit stops come when something happens, so their age
  is reported (info) but never fails."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pipeworks.db import Connection

Severity = Literal["error", "warn", "info"]

SECTOR_TOLERANCE_S = 0.05
LAP_START_TOLERANCE_S = 1.0
WEATHER_MAX_GAP_S = 300.0
# timeliness: stream -> the greatest age (s) of its newest row while a session runs;
# None: reported, never failed.
MAX_AGE_S: dict[str, float | None] = {
    "laps": 300.0,        # a lap behind the safety car takes well over two minutes
    "positions": 120.0,
    "intervals": 60.0,    # every few seconds while cars run
    "weather": 180.0,     # about once a minute
    "race_control": None,
    "pit_stops": None,
}


@dataclass(frozen=True)
class CheckResult:
    check_id: str
    severity: Severity
    passed: bool
    detail: dict[str, Any] = field(default_factory=dict)


Check = Callable[[Connection, int], Awaitable[CheckResult]]


async def laps_present(conn: Connection, session_key: int) -> CheckResult:
    rows = await conn.fetch("""
        WITH has_results AS (
            SELECT EXISTS (SELECT 1 FROM f1.session_results WHERE session_key = $1) AS yes
        ), expected AS (
            SELECT r.driver_number, n FROM f1.session_results r,
                   generate_series(1, r.number_of_laps) AS n
            WHERE r.session_key = $1 AND NOT r.dns
            UNION ALL
            SELECT l.driver_number, n
            FROM (SELECT driver_number, max(lap_number) AS last FROM f1.laps
                  WHERE session_key = $1 GROUP BY driver_number) l,
                 generate_series(1, l.last) AS n
            WHERE NOT (SELECT yes FROM has_results)
        )
        SELECT e.driver_number, array_agg(e.n ORDER BY e.n) AS laps FROM expected e
        WHERE NOT EXISTS (SELECT 1 FROM f1.laps l WHERE l.session_key = $1
                            AND l.driver_number = e.driver_number AND l.lap_number = e.n)
        GROUP BY e.driver_number ORDER BY e.driver_number
        """, session_key)
    missing = [{"driver_number": r["driver_number"], "laps": list(r["laps"])} for r in rows]
    return CheckResult("completeness.laps", "error", not missing, {
        "missing": missing, "count": sum(len(m["laps"]) for m in missing)})


async def lap_numbers_missing(conn: Connection, session_key: int) -> list[int]:
    """Lap numbers below the highest seen that no driver has: upstream gaps, to re-fetch."""
    gaps = await conn.fetchval("""
        SELECT coalesce(array_agg(n ORDER BY n), '{}')
        FROM generate_series(1, (SELECT max(lap_number) FROM f1.laps WHERE session_key = $1))
             AS n
        WHERE NOT EXISTS (SELECT 1 FROM f1.laps WHERE session_key = $1 AND lap_number = n)
        """, session_key)
    return list(gaps)


async def lap_gaps(conn: Connection, session_key: int) -> CheckResult:
    gaps = await lap_numbers_missing(conn, session_key)
    return CheckResult("completeness.lap_gaps", "warn", not gaps, {"lap_numbers": gaps})


async def stints_cover_laps(conn: Connection, session_key: int) -> CheckResult:
    rows = await conn.fetch("""
        SELECT l.driver_number, array_agg(l.lap_number ORDER BY l.lap_number) AS laps
        FROM f1.laps l
        WHERE l.session_key = $1 AND NOT EXISTS (
            SELECT 1 FROM f1.stints s
            WHERE s.session_key = $1 AND s.driver_number = l.driver_number
              AND l.lap_number BETWEEN s.lap_start AND greatest(s.lap_end, s.lap_start))
        GROUP BY l.driver_number ORDER BY l.driver_number
        """, session_key)
    uncovered = [{"driver_number": r["driver_number"], "laps": list(r["laps"])} for r in rows]
    return CheckResult("completeness.stints", "warn", not uncovered, {
        "uncovered": uncovered, "count": sum(len(u["laps"]) for u in uncovered)})


async def pit_per_stint_change(conn: Connection, session_key: int) -> CheckResult:
    """A stint followed by another ends on an in-lap: one pit row on its lap_end."""
    rows = await conn.fetch("""
        WITH changes AS (
            SELECT s.driver_number, s.lap_end AS lap_number FROM f1.stints s
            WHERE s.session_key = $1 AND EXISTS (
                SELECT 1 FROM f1.stints n WHERE n.session_key = $1
                  AND n.driver_number = s.driver_number AND n.stint_number > s.stint_number)
        ), stops AS (
            SELECT driver_number, lap_number FROM f1.pit_stops WHERE session_key = $1
        )
        SELECT 'no_pit_row' AS problem, c.driver_number, c.lap_number FROM changes c
        WHERE NOT EXISTS (SELECT 1 FROM stops p WHERE p.driver_number = c.driver_number
                            AND p.lap_number = c.lap_number)
        UNION ALL
        SELECT 'no_stint_change', p.driver_number, p.lap_number FROM stops p
        WHERE EXISTS (SELECT 1 FROM f1.stints WHERE session_key = $1)
          AND NOT EXISTS (SELECT 1 FROM changes c WHERE c.driver_number = p.driver_number
                            AND c.lap_number = p.lap_number)
        ORDER BY 1, 2, 3
        """, session_key)
    items = [dict(r) for r in rows]
    return CheckResult("completeness.pit_stops", "warn", not items,
                       {"mismatches": items, "count": len(items)})


async def weather_coverage(conn: Connection, session_key: int) -> CheckResult:
    """No gap over 5 minutes between the session's weather rows within its time span."""
    row = await conn.fetchrow("""
        WITH span AS (
            SELECT date_start, date_end FROM f1.sessions WHERE session_key = $1
        ), rows AS (
            SELECT w.date FROM f1.weather w
            WHERE w.session_key = $1 AND (NOT EXISTS (SELECT 1 FROM span) OR w.date BETWEEN
                (SELECT date_start FROM span) AND (SELECT date_end FROM span))
        ), steps AS (
            SELECT lag(date) OVER (ORDER BY date) AS previous, date FROM rows
        )
        SELECT (SELECT count(*) FROM rows) AS rows,
               coalesce(jsonb_agg(jsonb_build_object(
                   'from', previous, 'to', date,
                   'seconds', extract(epoch FROM date - previous)) ORDER BY date)
                   FILTER (WHERE date - previous > $2::float8 * interval '1 second'), '[]')
                   AS gaps
        FROM steps
        """, session_key, WEATHER_MAX_GAP_S)
    assert row is not None
    gaps = _json_list(row["gaps"])
    return CheckResult("completeness.weather", "warn", row["rows"] > 0 and not gaps,
                       {"rows": row["rows"], "gaps": gaps, "max_gap_s": WEATHER_MAX_GAP_S})


async def results_present(conn: Connection, session_key: int) -> CheckResult:
    count = await conn.fetchval(
        "SELECT count(*) FROM f1.session_results WHERE session_key = $1", session_key)
    return CheckResult("completeness.results", "warn", count > 0, {"rows": count})


async def sector_sums(conn: Connection, session_key: int) -> CheckResult:
    rows = await conn.fetch("""
        SELECT driver_number, lap_number, lap_duration,
               duration_sector_1 + duration_sector_2 + duration_sector_3 AS sector_sum
        FROM f1.laps
        WHERE session_key = $1
          AND abs(duration_sector_1 + duration_sector_2 + duration_sector_3 - lap_duration)
              > $2::float8
        ORDER BY driver_number, lap_number
        """, session_key, SECTOR_TOLERANCE_S)
    items = [dict(r) for r in rows]
    return CheckResult("consistency.sector_sums", "warn", not items, {
        "laps": items, "count": len(items), "tolerance_s": SECTOR_TOLERANCE_S})


async def lap_starts(conn: Connection, session_key: int) -> CheckResult:
    """A lap's start plus its duration is the next lap's start, within a second."""
    rows = await conn.fetch("""
        SELECT l.driver_number, l.lap_number,
               extract(epoch FROM n.date_start - l.date_start) - l.lap_duration AS off_by_s
        FROM f1.laps l
        JOIN f1.laps n ON n.session_key = l.session_key AND n.driver_number = l.driver_number
                      AND n.lap_number = l.lap_number + 1
        WHERE l.session_key = $1
          AND abs(extract(epoch FROM n.date_start - l.date_start) - l.lap_duration::numeric)
              > $2::float8::numeric
        ORDER BY l.driver_number, l.lap_number
        """, session_key, LAP_START_TOLERANCE_S)
    items = [{"driver_number": r["driver_number"], "lap_number": r["lap_number"],
              "off_by_s": float(r["off_by_s"])} for r in rows]
    return CheckResult("consistency.lap_starts", "warn", not items, {
        "laps": items, "count": len(items), "tolerance_s": LAP_START_TOLERANCE_S})


async def positions_unique(conn: Connection, session_key: int) -> CheckResult:
    events = await conn.fetchval(
        "SELECT count(*) FROM f1.positions WHERE session_key = $1", session_key)
    if not events:
        return CheckResult("consistency.positions", "warn", True, {"skipped": "no positions"})
    rows = await conn.fetch("""
        WITH ends AS (
            SELECT l.driver_number, l.lap_number,
                   coalesce(l.date_start + round(l.lap_duration * 1e6) * interval '1 microsecond',
                            CASE WHEN lead(l.lap_number) OVER w = l.lap_number + 1
                                 THEN lead(l.date_start) OVER w END) AS at
            FROM f1.laps l WHERE l.session_key = $1
            WINDOW w AS (PARTITION BY l.driver_number ORDER BY l.lap_number)
        ), instants AS (
            SELECT e.lap_number, min(e.at) AS at FROM ends e GROUP BY e.lap_number
        ), placed AS (
            SELECT e.lap_number, e.driver_number, p.position
            FROM ends e JOIN instants i ON i.lap_number = e.lap_number
            CROSS JOIN LATERAL (
                SELECT p.position FROM f1.positions p
                WHERE p.session_key = $1 AND p.driver_number = e.driver_number
                  AND p.date <= i.at
                ORDER BY p.date DESC LIMIT 1
            ) p
        )
        SELECT lap_number, position, array_agg(driver_number ORDER BY driver_number) AS drivers
        FROM placed GROUP BY lap_number, position HAVING count(*) > 1
        ORDER BY lap_number, position
        """, session_key)
    items = [{"lap_number": r["lap_number"], "position": r["position"],
              "drivers": list(r["drivers"])} for r in rows]
    return CheckResult("consistency.positions", "error", not items,
                       {"duplicates": items, "count": len(items)})


async def result_positions(conn: Connection, session_key: int) -> CheckResult:
    """The classified positions are 1..k, each once."""
    positions: list[int] = list(await conn.fetchval(
        "SELECT coalesce(array_agg(position ORDER BY position), '{}') FROM f1.session_results"
        " WHERE session_key = $1 AND position IS NOT NULL", session_key))
    expected = list(range(1, len(positions) + 1))
    duplicates = sorted({p for p in positions if positions.count(p) > 1})
    missing = sorted(set(expected) - set(positions))
    return CheckResult("consistency.result_positions", "error", positions == expected,
                       {"duplicates": duplicates, "missing": missing,
                        "classified": len(positions)})


async def newest_rows(conn: Connection, session_key: int) -> dict[str, datetime | None]:
    row = await conn.fetchrow("""
        SELECT (SELECT max(date_start) FROM f1.laps WHERE session_key = $1) AS laps,
               (SELECT max(date) FROM f1.positions WHERE session_key = $1) AS positions,
               (SELECT max(date) FROM f1.intervals WHERE session_key = $1) AS intervals,
               (SELECT max(date) FROM f1.weather WHERE session_key = $1) AS weather,
               (SELECT max(date) FROM f1.race_control WHERE session_key = $1) AS race_control,
               (SELECT max(date) FROM f1.pit_stops WHERE session_key = $1) AS pit_stops
        """, session_key)
    assert row is not None
    return {stream: row[stream] for stream in MAX_AGE_S}


def timeliness(newest: dict[str, datetime | None], now: datetime) -> list[CheckResult]:
    results = []
    for stream, max_age in MAX_AGE_S.items():
        at = newest[stream]
        age = None if at is None else (now - at).total_seconds()
        detail = {"newest": at.isoformat() if at else None, "age_s": age, "max_age_s": max_age}
        if max_age is None:
            results.append(CheckResult(f"timeliness.{stream}", "info", True, detail))
        else:
            results.append(CheckResult(f"timeliness.{stream}", "warn",
                                       age is not None and age <= max_age, detail))
    return results


def _json_list(value: Any) -> list[Any]:
    """jsonb as the connection decodes it: a list with the project's codec, else text."""
    decoded = json.loads(value) if isinstance(value, str) else value
    assert isinstance(decoded, list)
    return decoded


# Run in this order; each takes (conn, session_key).
CHECKS: Sequence[Check] = (
    laps_present, lap_gaps, stints_cover_laps, pit_per_stint_change, weather_coverage,
    results_present, sector_sums, lap_starts, positions_unique, result_positions)
