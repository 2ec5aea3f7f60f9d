"""f1.stint_metrics of one session, from the lap metrics just merged.

Degradation is the least-squares slope of fuel_corrected_s on tyre_age over the stint's
valid laps (`regr_slope`; intercept and r2 from the same fit), null below
`min_degradation_laps` valid laps; median_pace_s is the median fuel_corrected_s of the
valid laps; `laps` counts the stint's laps that have a lap row.

Choices: every stints row gets a metrics row, even one holding no lap (laps 0); an
inferred stint (derive_laps.py) gets one too, marked partial with its laps. The fit
reads fuel_corrected_s recomputed from the raw lap time (minus fuel_s_per_kg x the
stored fuel_kg), not the stored, rounded value, so rounding happens once, at the end.
Aggregates take their rows in lap order, so their floating-point sums never depend on
the physical order of the rows."""

from __future__ import annotations

from typing import Any

from activities.f1.derive_facts import SessionFacts
from activities.f1.params import MetricParams
from pipeworks.db import Connection

STINT_METRICS_SQL = """
WITH lv AS (
    SELECT m.driver_number, m.lap_number, m.stint_number, m.tyre_age::float8 AS tyre_age,
           m.valid_for_pace AS valid,
           l.lap_duration - $4::float8 * coalesce(m.fuel_kg::float8, 0) AS fc
    FROM f1.lap_metrics m
    JOIN f1.laps l ON l.session_key = m.session_key AND l.driver_number = m.driver_number
                  AND l.lap_number = m.lap_number
    WHERE m.session_key = $1
), stints AS (
    SELECT s.driver_number, s.stint_number, s.compound, false AS inferred
    FROM f1.stints s WHERE s.session_key = $1
    UNION ALL
    SELECT DISTINCT v.driver_number, v.stint_number, NULL::text, true FROM lv v
    WHERE v.driver_number = ANY($2::int[]) AND v.stint_number IS NOT NULL
), fits AS (
    SELECT s.driver_number, s.stint_number, s.compound, s.inferred,
           count(v.lap_number)::int AS laps,
           (count(*) FILTER (WHERE v.valid))::int AS valid_laps,
           regr_slope(v.fc, v.tyre_age ORDER BY v.lap_number) FILTER (WHERE v.valid) AS slope,
           regr_intercept(v.fc, v.tyre_age ORDER BY v.lap_number) FILTER (WHERE v.valid)
               AS intercept,
           regr_r2(v.fc, v.tyre_age ORDER BY v.lap_number) FILTER (WHERE v.valid) AS r2,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY v.fc) FILTER (WHERE v.valid) AS pace
    FROM stints s
    LEFT JOIN lv v ON v.driver_number = s.driver_number AND v.stint_number = s.stint_number
    GROUP BY s.driver_number, s.stint_number, s.compound, s.inferred
)
SELECT $1::int, f.driver_number, f.stint_number, f.compound, f.laps, f.valid_laps,
       CASE WHEN f.valid_laps >= $5::int THEN round(f.slope::numeric, 6) END,
       CASE WHEN f.valid_laps >= $5::int THEN round(f.intercept::numeric, 6) END,
       CASE WHEN f.valid_laps >= $5::int THEN round(f.r2::numeric, 6) END,
       round(f.pace::numeric, 6), $6::text,
       CASE WHEN f.inferred OR $3::boolean THEN 'partial' ELSE 'complete' END
FROM fits f
ORDER BY f.driver_number, f.stint_number
"""


async def stint_metrics_rows(conn: Connection, facts: SessionFacts, params: MetricParams,
                             version: str) -> list[tuple[Any, ...]]:
    """The session's f1.stint_metrics rows, in derived_tables.STINT_METRICS order."""
    rows = await conn.fetch(
        STINT_METRICS_SQL, facts.session_key, list(facts.stintless_drivers),
        facts.race_control_missing, params.fuel_s_per_kg, params.min_degradation_laps,
        version)
    return [tuple(r) for r in rows]
