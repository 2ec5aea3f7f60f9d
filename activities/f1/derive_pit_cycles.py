"""f1.pit_cycles of a race, from the lap metrics just merged (positions and gaps at the
end of each lap, neutralised labels).

Drivers A and B stop on laps pA < pB <= pA + pit_cycle_max_lap_gap with no other stop
of either in [pA - 1, pB + 2], and at the end of lap pA - 1 they are adjacent in
position or within pit_cycle_max_gap_s (inclusive). Compared at the end of lap pB + 1:
A behind before and ahead after is a successful undercut, A ahead before and behind
after a successful overcut by B; otherwise the attempt failed, its kind by who was
behind before. Skipped when any of the four positions is unknown (pA = 1: there is no
lap 0; a driver who retired; a lap row missing). `neutralised` when a lap pA..pB + 1 of
either driver is neutralised (its label, so the "more than an instant" rule applies).
gain_s: how much A's deficit to B shrank, (A - B at the end of pA - 1) - (A - B at the
end of pB + 1), from the gaps to the leader, which are exact to the microsecond."""

from __future__ import annotations

from typing import Any

from activities.f1.derive_facts import SessionFacts
from activities.f1.params import MetricParams
from pipeworks.db import Connection

PIT_CYCLES_SQL = """
WITH stops AS (
    SELECT p.driver_number, p.lap_number FROM f1.pit_stops p WHERE p.session_key = $1
), ends AS (
    SELECT m.driver_number, m.lap_number, m.position, m.gap_to_leader_s AS gap, m.neutralised
    FROM f1.lap_metrics m WHERE m.session_key = $1
), pairs AS (
    SELECT a.driver_number AS earlier, b.driver_number AS later,
           a.lap_number AS pa, b.lap_number AS pb
    FROM stops a
    JOIN stops b ON b.driver_number <> a.driver_number
                AND b.lap_number > a.lap_number AND b.lap_number <= a.lap_number + $2::int
    WHERE NOT EXISTS (
        SELECT 1 FROM stops o
        WHERE o.driver_number IN (a.driver_number, b.driver_number)
          AND o.lap_number BETWEEN a.lap_number - 1 AND b.lap_number + 2
          AND NOT (o.driver_number = a.driver_number AND o.lap_number = a.lap_number)
          AND NOT (o.driver_number = b.driver_number AND o.lap_number = b.lap_number))
), compared AS (
    SELECT p.*, a0.position AS a_before, b0.position AS b_before,
           a1.position AS a_after, b1.position AS b_after,
           a0.gap - b0.gap AS behind_before, a1.gap - b1.gap AS behind_after
    FROM pairs p
    JOIN ends a0 ON a0.driver_number = p.earlier AND a0.lap_number = p.pa - 1
    JOIN ends b0 ON b0.driver_number = p.later AND b0.lap_number = p.pa - 1
    JOIN ends a1 ON a1.driver_number = p.earlier AND a1.lap_number = p.pb + 1
    JOIN ends b1 ON b1.driver_number = p.later AND b1.lap_number = p.pb + 1
    WHERE a0.position IS NOT NULL AND b0.position IS NOT NULL
      AND a1.position IS NOT NULL AND b1.position IS NOT NULL
      AND (abs(a0.position - b0.position) = 1
           OR abs(a0.gap - b0.gap) <= $3::float8::numeric)
)
SELECT $1::int, c.earlier, c.later, c.pa, c.pb,
       CASE WHEN c.a_before > c.b_before THEN 'undercut' ELSE 'overcut' END,
       CASE WHEN c.a_before > c.b_before THEN c.a_after < c.b_after
            ELSE c.a_after > c.b_after END,
       round(c.behind_before - c.behind_after, 6),
       EXISTS (SELECT 1 FROM ends n
               WHERE n.driver_number IN (c.earlier, c.later)
                 AND n.lap_number BETWEEN c.pa AND c.pb + 1 AND n.neutralised IS NOT NULL),
       $4::text
FROM compared c
ORDER BY c.earlier, c.later, c.pa
"""


async def pit_cycle_rows(conn: Connection, facts: SessionFacts, params: MetricParams,
                         version: str) -> list[tuple[Any, ...]]:
    """The race's f1.pit_cycles rows (none for other sessions: stops there are garage
    visits, not strategy), in derived_tables.PIT_CYCLES order."""
    if not facts.is_race:
        return []
    rows = await conn.fetch(
        PIT_CYCLES_SQL, facts.session_key, params.pit_cycle_max_lap_gap,
        params.pit_cycle_max_gap_s, version)
    return [tuple(r) for r in rows]
