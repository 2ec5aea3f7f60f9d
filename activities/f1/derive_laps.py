"""f1.lap_metrics of one session, set-based (interfaces.md, F1 pipeline, Definitions).

Choices where the text is silent:
- a lap belongs to the stint whose [lap_start, lap_end] holds it, the highest-numbered
  one if stints overlap; a stint with lap_end < lap_start (f1-api.md: a driver who
  retired on the stint's out-lap) holds its lap_start, the out-lap he began on those
  tyres; a lap outside every stint has no stint, compound or tyre age, and for the 1.07
  rule its driver's stintless laps form one group;
- tyre age is null when the stint's tyre_age_at_start is;
- a driver with laps but no stints row gets stints inferred (marked partial): each pit
  stop's lap ends one (the in-lap), as does the lap before an `is_pit_out_lap` lap; the
  last runs to his last lap; compound unknown, tyres assumed new (tyre_age_at_start 0),
  which moves the degradation intercept, never its slope;
- invalid_reason is the first failing rule, in the order of the definition: lap_1,
  in_lap, out_lap, neutralised, after_sc (the driver's lap n-1, taken as [date_start,
  completed_at), overlaps an SC period; a missing lap n-1 does not), no_duration, slow;
- a lap completed at the same microsecond as another is placed by driver number;
- sessions other than races (Practice, Qualifying, Sprint Qualifying) have no fuel
  model (fuel loads are unknown and not burnt linearly over a race distance:
  fuel_kg is null and fuel_corrected_s is the lap time), no positions or gaps (lap
  numbers are not comparable across drivers there) and no pace deltas.
- Neutralised laps: see neutralised.py.

Timestamps are exact to the microsecond: a lap's end is date_start plus its duration
rounded to whole microseconds (half to even, as Python's `round` does), so the
reference recomputation (tests/f1/reference_metrics.py) gets the same instants.
Numeric outputs are rounded to 6 decimals, so a recomputation over unchanged data
compares equal and writes nothing."""

# ruff: noqa: S608 - the SQL is composed from constant fragments; values are $n parameters

from __future__ import annotations

from typing import Any

from activities.f1.derive_facts import SessionFacts
from activities.f1.neutralised import Placeholders, neutralised_ctes
from activities.f1.params import MetricParams
from pipeworks.db import Connection

_NEUTRALISED = neutralised_ctes(Placeholders(
    session_key="$1", min_overlap_s="$10", infer="$4", ratio="$11", share="$12",
    min_drivers="$13"))

LAP_METRICS_SQL = f"""
WITH laps AS (
    SELECT l.driver_number, l.lap_number, l.date_start, l.lap_duration, l.is_pit_out_lap,
           l.date_start + round(l.lap_duration * 1e6) * interval '1 microsecond' AS date_end
    FROM f1.laps l WHERE l.session_key = $1
), timed AS (
    SELECT l.*, coalesce(l.date_end, CASE WHEN lead(l.lap_number) OVER w = l.lap_number + 1
                                          THEN lead(l.date_start) OVER w END) AS completed_at
    FROM laps l WINDOW w AS (PARTITION BY l.driver_number ORDER BY l.lap_number)
), inferred_ends AS (
    SELECT p.driver_number, p.lap_number AS lap_end FROM f1.pit_stops p
    WHERE p.session_key = $1 AND p.driver_number = ANY($6::int[]) AND p.lap_number >= 1
    UNION
    SELECT l.driver_number, l.lap_number - 1 FROM laps l
    WHERE l.driver_number = ANY($6::int[]) AND l.is_pit_out_lap AND l.lap_number > 1
), inferred_bounds AS (
    SELECT e.driver_number, e.lap_end FROM inferred_ends e
    UNION
    SELECT l.driver_number, max(l.lap_number) FROM laps l
    WHERE l.driver_number = ANY($6::int[])
    GROUP BY l.driver_number
    HAVING max(l.lap_number) > coalesce(
        (SELECT max(e.lap_end) FROM inferred_ends e WHERE e.driver_number = l.driver_number), 0)
), stints AS MATERIALIZED (
    SELECT s.driver_number, s.stint_number, s.lap_start, s.lap_end, s.compound,
           s.tyre_age_at_start, false AS inferred
    FROM f1.stints s WHERE s.session_key = $1
    UNION ALL
    SELECT b.driver_number, (row_number() OVER w)::int,
           coalesce(lag(b.lap_end) OVER w, 0) + 1, b.lap_end, NULL::text, 0, true
    FROM inferred_bounds b WINDOW w AS (PARTITION BY b.driver_number ORDER BY b.lap_end)
), staged AS (
    SELECT t.*, s.stint_number, s.compound,
           s.tyre_age_at_start + (t.lap_number - s.lap_start) + 1 AS tyre_age,
           coalesce(s.inferred, false) AS inferred,
           EXISTS (SELECT 1 FROM f1.pit_stops p WHERE p.session_key = $1
                     AND p.driver_number = t.driver_number AND p.lap_number = t.lap_number)
               AS is_in_lap,
           t.is_pit_out_lap OR coalesce(s.stint_number > 1 AND t.lap_number = s.lap_start, false)
               AS is_out_lap
    FROM timed t LEFT JOIN LATERAL (
        SELECT * FROM stints s
        WHERE s.driver_number = t.driver_number
          AND t.lap_number BETWEEN s.lap_start AND greatest(s.lap_end, s.lap_start)
        ORDER BY s.stint_number DESC LIMIT 1
    ) s ON true
), {_NEUTRALISED}, fuelled AS (
    SELECT s.*, m.label, m.overlaps_sc,
           CASE WHEN $3::boolean AND $2::int > 0 THEN greatest(
               $7::float8 - ($7::float8 / $2::int) * (s.lap_number - 0.5::float8), 0) END
               AS fuel_kg
    FROM staged s
    JOIN lap_marks m ON m.driver_number = s.driver_number AND m.lap_number = s.lap_number
), checked AS (
    SELECT f.*, f.lap_duration - $8::float8 * coalesce(f.fuel_kg, 0) AS fc,
           CASE WHEN f.lap_number = 1 THEN 'lap_1'
                WHEN f.is_in_lap THEN 'in_lap'
                WHEN f.is_out_lap THEN 'out_lap'
                WHEN f.label IS NOT NULL THEN 'neutralised'
                WHEN lag(f.lap_number) OVER w = f.lap_number - 1 AND lag(f.overlaps_sc) OVER w
                    THEN 'after_sc'
                WHEN f.lap_duration IS NULL THEN 'no_duration'
           END AS pre_reason
    FROM fuelled f WINDOW w AS (PARTITION BY f.driver_number ORDER BY f.lap_number)
), stint_pace AS (
    SELECT c.driver_number, c.stint_number,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY c.lap_duration) AS pace
    FROM checked c WHERE c.pre_reason IS NULL
    GROUP BY c.driver_number, c.stint_number
), judged AS (
    SELECT c.*, coalesce(c.pre_reason, CASE WHEN c.lap_duration > $9::float8 * p.pace
                                            THEN 'slow' END) AS reason
    FROM checked c LEFT JOIN stint_pace p
      ON p.driver_number = c.driver_number AND p.stint_number IS NOT DISTINCT FROM c.stint_number
), field AS (
    SELECT j.lap_number, percentile_cont(0.5) WITHIN GROUP (ORDER BY j.fc) AS pace
    FROM judged j WHERE $3::boolean AND j.reason IS NULL
    GROUP BY j.lap_number
), teams AS (
    SELECT d.driver_number, d.team_name FROM f1.drivers d
    WHERE d.session_key = $1 AND d.team_name IS NOT NULL
), mates AS (
    -- The median of the team's other drivers: "the other driver" when there are two.
    SELECT a.driver_number, a.lap_number,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY b.fc) AS pace
    FROM judged a
    JOIN teams ta ON ta.driver_number = a.driver_number
    JOIN teams tb ON tb.team_name = ta.team_name AND tb.driver_number <> ta.driver_number
    JOIN judged b ON b.driver_number = tb.driver_number AND b.lap_number = a.lap_number
                 AND b.reason IS NULL
    WHERE $3::boolean AND a.reason IS NULL
    GROUP BY a.driver_number, a.lap_number
), placed AS (
    SELECT t.driver_number, t.lap_number,
           row_number() OVER (PARTITION BY t.lap_number ORDER BY t.completed_at, t.driver_number)
               AS position,
           extract(epoch FROM t.completed_at - min(t.completed_at) OVER (PARTITION BY t.lap_number))
               AS gap
    FROM timed t WHERE $3::boolean AND t.completed_at IS NOT NULL
)
SELECT $1::int, j.driver_number, j.lap_number, j.stint_number, j.compound, j.tyre_age,
       j.is_in_lap, j.is_out_lap, j.label,
       round(j.fuel_kg::numeric, 6), round(j.fc::numeric, 6),
       j.reason IS NULL, j.reason,
       p.position::int, round(p.gap, 6),
       round((j.fc - fd.pace)::numeric, 6), round((j.fc - mt.pace)::numeric, 6),
       $14::text,
       CASE WHEN j.inferred OR $5::boolean THEN 'partial' ELSE 'complete' END
FROM judged j
LEFT JOIN field fd ON j.reason IS NULL AND fd.lap_number = j.lap_number
LEFT JOIN mates mt ON mt.driver_number = j.driver_number AND mt.lap_number = j.lap_number
LEFT JOIN placed p ON p.driver_number = j.driver_number AND p.lap_number = j.lap_number
ORDER BY j.driver_number, j.lap_number
"""


async def lap_metrics_rows(conn: Connection, facts: SessionFacts, params: MetricParams,
                           version: str) -> list[tuple[Any, ...]]:
    """The session's f1.lap_metrics rows, in derived_tables.LAP_METRICS column order."""
    rows = await conn.fetch(
        LAP_METRICS_SQL, facts.session_key, facts.race_laps, facts.is_race,
        facts.is_race and facts.race_control_missing, facts.race_control_missing,
        list(facts.stintless_drivers), params.fuel_start_kg, params.fuel_s_per_kg,
        params.pace_window, params.neutralised_min_overlap_s, params.inferred_sc_ratio,
        params.inferred_sc_share, params.inferred_sc_min_drivers, version)
    return [tuple(r) for r in rows]
