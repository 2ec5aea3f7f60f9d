"""What the F1 pages of `pipeworks serve` chart: one JSON-able document per session (the
report's rows plus the per-lap data behind the charts) and the list of sessions.

Choices:
- every value is JSON-able as is (floats, ISO 8601 strings), so a template embeds the
  document with `tojson` and the browser needs no parsing of its own;
- lap times come from f1.laps, so a session whose metrics are not derived yet still
  charts; pit-in laps are laps with a pit stop (as lap metrics define `is_in_lap`),
  pit-out laps the metrics' `is_out_lap`, else the upstream's `is_pit_out_lap`;
- a neutralised period's lap range is read off the lap metrics' labels, which are per
  driver lap. Laps count as the race counts them, by the leader: lap n is neutralised
  when the leader's lap n (position 1 at its end) is labelled, so an SC "of laps
  38-41" reads 38-41, though most cars were still on lap 37 when it came out. Without
  a leader (sessions other than races have no positions; a leader's lap without a
  time has no label), lap n is neutralised when at least half of the drivers with a
  lap n have a label there ("any driver" would stretch every period back by the
  lapped cars' laps);
- degradation points are a stint's laps valid for pace with a tyre age, exactly the
  pairs `regr_slope` fits (activities/f1/derive_stints.py); a stint too short for a
  fit still shows its points, with no line. The line is intercept_s + slope x tyre age
  (the fit's x is the tyre age itself, so intercept_s is the value at age 0), drawn
  over the ages of its points;
- the queries run in one read-only repeatable-read transaction: a sync writing the
  session meanwhile cannot make the charts disagree with the tables beside them."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from pipeworks.db import Connection
from starters.f1.report import session_report_on

# Label precedence when as many drivers carry one label as another (lap metrics' order).
_KINDS = ("RED", "SC", "VSC")
# A neutralised lap range needs at least this share of the drivers on that lap.
_NEUTRALISED_SHARE = 0.5

# Name and team fields the upstream left null (OpenF1 does so for most drivers of some
# sessions) are taken from the same driver in the meeting's latest other session.
_DRIVERS = """
    SELECT d.driver_number, coalesce(d.name_acronym, o.name_acronym) AS name_acronym,
           coalesce(d.full_name, o.full_name) AS full_name,
           coalesce(d.team_name, o.team_name) AS team_name,
           coalesce(d.team_colour, o.team_colour) AS team_colour, r.position
    FROM f1.drivers d
    LEFT JOIN LATERAL (
        SELECT x.name_acronym, x.full_name, x.team_name, x.team_colour FROM f1.drivers x
        WHERE x.meeting_key = d.meeting_key AND x.driver_number = d.driver_number
          AND x.session_key <> d.session_key AND x.name_acronym IS NOT NULL
        ORDER BY x.session_key DESC LIMIT 1
    ) o ON d.name_acronym IS NULL OR d.team_name IS NULL OR d.team_colour IS NULL
    LEFT JOIN f1.session_results r ON r.session_key = d.session_key
                                  AND r.driver_number = d.driver_number
    WHERE d.session_key = $1
"""
_LAPS = """
    SELECT l.driver_number, l.lap_number, l.lap_duration,
           EXISTS (SELECT 1 FROM f1.pit_stops p
                   WHERE p.session_key = l.session_key AND p.driver_number = l.driver_number
                     AND p.lap_number = l.lap_number) AS pit_in,
           coalesce(m.is_out_lap, l.is_pit_out_lap) AS pit_out, m.neutralised,
           m.position = 1 AS leads
    FROM f1.laps l
    LEFT JOIN f1.lap_metrics m ON m.session_key = l.session_key
                              AND m.driver_number = l.driver_number
                              AND m.lap_number = l.lap_number
    WHERE l.session_key = $1
    ORDER BY l.driver_number, l.lap_number
"""
_FIT_POINTS = """
    SELECT m.driver_number, m.stint_number, m.lap_number, m.tyre_age, m.fuel_corrected_s
    FROM f1.lap_metrics m
    WHERE m.session_key = $1 AND m.valid_for_pace AND m.stint_number IS NOT NULL
      AND m.tyre_age IS NOT NULL AND m.fuel_corrected_s IS NOT NULL
    ORDER BY m.driver_number, m.stint_number, m.lap_number
"""
_SESSIONS = """
    SELECT s.session_key, s.year, m.meeting_name, s.session_name, s.session_type,
           s.date_start,
           (SELECT count(*) FROM f1.laps l WHERE l.session_key = s.session_key)::int AS laps,
           (SELECT count(*) FROM (
                SELECT DISTINCT ON (q.check_id) q.passed FROM f1.quality_checks q
                WHERE q.session_key = s.session_key ORDER BY q.check_id, q.id DESC
            ) latest WHERE NOT latest.passed)::int AS failed_checks
    FROM f1.sessions s LEFT JOIN f1.meetings m USING (meeting_key)
    WHERE EXISTS (SELECT 1 FROM f1.laps l WHERE l.session_key = s.session_key)
       OR EXISTS (SELECT 1 FROM f1.lap_metrics x WHERE x.session_key = s.session_key)
       OR EXISTS (SELECT 1 FROM f1.stint_metrics x WHERE x.session_key = s.session_key)
    ORDER BY s.date_start DESC, s.session_key DESC
    LIMIT $1
"""
_HEX_COLOUR = re.compile(r"#?([0-9A-Fa-f]{6})")


def jsonable(value: Any) -> Any:
    """`value` with Decimals as floats and datetimes as ISO 8601 strings, recursively."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def colour(stored: str | None) -> str | None:
    """OpenF1's team colour ("3671C6") as CSS ("#3671C6"); None when absent or odd."""
    match = _HEX_COLOUR.fullmatch(stored.strip()) if stored else None
    return f"#{match.group(1).upper()}" if match else None


def neutralised_ranges(labels: Mapping[int, Sequence[str | None]],
                       leaders: Mapping[int, str | None] | None = None
                       ) -> list[dict[str, Any]]:
    """Lap ranges [from_lap, to_lap] with their kind, from each lap number's labels (one
    per driver with that lap, None when not neutralised) and the label of the leader's
    lap where there is a timed one (`leaders`: lap number -> label)."""
    leaders = leaders or {}
    kind_of: dict[int, str] = {}
    for lap, marks in labels.items():
        if lap in leaders:
            if (led := leaders[lap]) is not None:
                kind_of[lap] = led
            continue
        counted = Counter(m for m in marks if m is not None)
        if marks and sum(counted.values()) >= _NEUTRALISED_SHARE * len(marks):
            kind_of[lap] = max(counted, key=lambda k: (counted[k], -_KINDS.index(k)))
    ranges: list[dict[str, Any]] = []
    for lap in sorted(kind_of):
        last = ranges[-1] if ranges else None
        if last is not None and last["kind"] == kind_of[lap] and last["to_lap"] == lap - 1:
            last["to_lap"] = lap
        else:
            ranges.append({"kind": kind_of[lap], "from_lap": lap, "to_lap": lap})
    return ranges


def fitted_line(slope: float | None, intercept: float | None, ages: Sequence[int]
                ) -> list[dict[str, float]] | None:
    """The fit's two ends over the ages it saw: fuel-corrected s = intercept + slope x age."""
    if slope is None or intercept is None or not ages:
        return None
    return [{"tyre_age": age, "s": intercept + slope * age} for age in (min(ages), max(ages))]


async def _drivers(conn: Connection, session_key: int
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The drivers with their laps, and the neutralised lap ranges."""
    known = {r["driver_number"]: r for r in await conn.fetch(_DRIVERS, session_key)}
    laps: dict[int, list[dict[str, Any]]] = defaultdict(list)
    labels: dict[int, list[str | None]] = defaultdict(list)
    leaders: dict[int, str | None] = {}
    for r in await conn.fetch(_LAPS, session_key):
        laps[r["driver_number"]].append({
            "lap": r["lap_number"], "time_s": r["lap_duration"], "pit_in": r["pit_in"],
            "pit_out": r["pit_out"], "neutralised": r["neutralised"]})
        labels[r["lap_number"]].append(r["neutralised"])
        if r["leads"] and r["lap_duration"] is not None:
            leaders[r["lap_number"]] = r["neutralised"]
    drivers = []
    for number in set(laps) | set(known):
        row = known.get(number)
        drivers.append({
            "driver_number": number,
            "acronym": (row and row["name_acronym"]) or f"#{number}",
            "name": row["full_name"] if row else None,
            "team_name": row["team_name"] if row else None,
            "team_colour": colour(row["team_colour"]) if row else None,
            "position": row["position"] if row else None,
            "laps": laps.get(number, [])})
    # Classified order first: the chart's legend reads like the result.
    drivers.sort(key=lambda d: (d["position"] is None, d["position"] or 0, d["driver_number"]))
    return drivers, neutralised_ranges(labels, leaders)


async def _stints(conn: Connection, session_key: int, report_stints: list[dict[str, Any]]
                  ) -> list[dict[str, Any]]:
    points: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for r in await conn.fetch(_FIT_POINTS, session_key):
        points[(r["driver_number"], r["stint_number"])].append({
            "lap": r["lap_number"], "tyre_age": r["tyre_age"],
            "fuel_corrected_s": float(r["fuel_corrected_s"])})
    stints = []
    for s in report_stints:
        own = points.get((s["driver_number"], s["stint_number"]), [])
        stints.append({
            "driver_number": s["driver_number"], "driver": s["driver"],
            "stint_number": s["stint_number"], "compound": s["compound"],
            "laps": s["laps"], "valid_laps": s["valid_laps"],
            "degradation_s_per_lap": s["degradation_s_per_lap"],
            "intercept_s": s["intercept_s"], "r2": s["r2"],
            "completeness": s["completeness"], "points": own,
            "line": fitted_line(s["degradation_s_per_lap"], s["intercept_s"],
                                [p["tyre_age"] for p in own])})
    return stints


async def session_page_on(conn: Connection, session_key: int) -> dict[str, Any] | None:
    """The session page's document on an open connection; None for an unknown session."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        report = await session_report_on(conn, session_key)
        if report is None:
            return None
        drivers, neutralised = await _drivers(conn, session_key)
        stints = await _stints(conn, session_key, report["stints"])
    checks = report["quality_checks"]
    page: dict[str, Any] = jsonable({
        "session": report["session"],
        "drivers": drivers,
        "neutralised": neutralised,
        "stints": stints,
        "pit_cycles": report["pit_cycles"],
        "failed_checks": [q for q in checks if not q["passed"]],
        "checks_total": len(checks),
    })
    return page


async def session_page(pool: asyncpg.Pool, session_key: int) -> dict[str, Any] | None:
    async with pool.acquire() as conn:
        return await session_page_on(conn, session_key)


async def sessions_list(pool: asyncpg.Pool, limit: int = 500) -> list[dict[str, Any]]:
    """Sessions with laps or metrics, newest first; `failed_checks` counts the checks
    whose latest result failed."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(_SESSIONS, limit)
    return [jsonable(dict(r)) for r in rows]
