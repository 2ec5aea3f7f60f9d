"""f1.driver_session_metrics of a race, from the lap metrics just merged.

- race_pace_delta_s: the median of the driver's lap deltas to the field (his valid
  fuel_corrected_s minus the median of the valid fuel_corrected_s of that lap number);
- teammate_delta_s: the median of his lap deltas to his teammate (same team_name in
  f1.drivers), over laps both have valid;
- laps_led: laps at whose end he was first;
- positions_gained: starting grid position (f1.starting_grid of the race's qualifying
  session) minus classified position, null when either is missing;
- median_pit_loss_s: the median over his stops (pit row on lap n) of (lap n + lap n+1)
  - 2 x the median valid lap_duration of his laps n-5..n+5.

Choices: a row for every driver of the session (f1.drivers, laps or results); a stop
whose in-lap or out-lap has no duration, or with no valid lap in its window, has no
loss and is left out of the median. The deltas are recomputed from the raw lap times
(not the stored, rounded per-lap deltas), so rounding happens once. None of this is
written for sessions other than races: a median over lap numbers, positions and grid
places mean nothing there."""

from __future__ import annotations

from typing import Any

from activities.f1.derive_facts import SessionFacts
from activities.f1.params import MetricParams
from pipeworks.db import Connection

DRIVER_METRICS_SQL = """
WITH lv AS (
    SELECT m.driver_number, m.lap_number, m.valid_for_pace AS valid, m.position,
           l.lap_duration, l.lap_duration - $2::float8 * coalesce(m.fuel_kg::float8, 0) AS fc
    FROM f1.lap_metrics m
    JOIN f1.laps l ON l.session_key = m.session_key AND l.driver_number = m.driver_number
                  AND l.lap_number = m.lap_number
    WHERE m.session_key = $1
), field AS (
    SELECT v.lap_number, percentile_cont(0.5) WITHIN GROUP (ORDER BY v.fc) AS pace
    FROM lv v WHERE v.valid GROUP BY v.lap_number
), teams AS (
    SELECT d.driver_number, d.team_name FROM f1.drivers d
    WHERE d.session_key = $1 AND d.team_name IS NOT NULL
), mates AS (
    SELECT a.driver_number, a.lap_number, a.fc - percentile_cont(0.5) WITHIN GROUP (ORDER BY b.fc)
               AS delta
    FROM lv a
    JOIN teams ta ON ta.driver_number = a.driver_number
    JOIN teams tb ON tb.team_name = ta.team_name AND tb.driver_number <> ta.driver_number
    JOIN lv b ON b.driver_number = tb.driver_number AND b.lap_number = a.lap_number AND b.valid
    WHERE a.valid
    GROUP BY a.driver_number, a.lap_number, a.fc
), field_delta AS (
    SELECT v.driver_number, percentile_cont(0.5) WITHIN GROUP (ORDER BY v.fc - f.pace) AS delta
    FROM lv v JOIN field f ON f.lap_number = v.lap_number
    WHERE v.valid GROUP BY v.driver_number
), mate_delta AS (
    SELECT m.driver_number, percentile_cont(0.5) WITHIN GROUP (ORDER BY m.delta) AS delta
    FROM mates m GROUP BY m.driver_number
), led AS (
    SELECT v.driver_number, (count(*) FILTER (WHERE v.position = 1))::int AS laps
    FROM lv v GROUP BY v.driver_number
), stop_loss AS (
    SELECT p.driver_number,
           i.lap_duration + o.lap_duration - 2 * (
               SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY w.lap_duration) FROM lv w
               WHERE w.driver_number = p.driver_number AND w.valid
                 AND w.lap_number BETWEEN p.lap_number - $4::int AND p.lap_number + $4::int
           ) AS loss
    FROM f1.pit_stops p
    JOIN lv i ON i.driver_number = p.driver_number AND i.lap_number = p.lap_number
    JOIN lv o ON o.driver_number = p.driver_number AND o.lap_number = p.lap_number + 1
    WHERE p.session_key = $1
), pit_loss AS (
    SELECT s.driver_number, percentile_cont(0.5) WITHIN GROUP (ORDER BY s.loss) AS loss
    FROM stop_loss s WHERE s.loss IS NOT NULL GROUP BY s.driver_number
), everyone AS (
    SELECT d.driver_number FROM f1.drivers d WHERE d.session_key = $1
    UNION SELECT v.driver_number FROM lv v
    UNION SELECT r.driver_number FROM f1.session_results r WHERE r.session_key = $1
)
SELECT $1::int, e.driver_number, round(fd.delta::numeric, 6), round(md.delta::numeric, 6),
       coalesce(led.laps, 0), g.position - r.position, round(pl.loss::numeric, 6), $5::text
FROM everyone e
LEFT JOIN field_delta fd ON fd.driver_number = e.driver_number
LEFT JOIN mate_delta md ON md.driver_number = e.driver_number
LEFT JOIN led ON led.driver_number = e.driver_number
LEFT JOIN pit_loss pl ON pl.driver_number = e.driver_number
LEFT JOIN f1.starting_grid g ON g.session_key = $3::int AND g.driver_number = e.driver_number
LEFT JOIN f1.session_results r ON r.session_key = $1 AND r.driver_number = e.driver_number
ORDER BY e.driver_number
"""


async def driver_metrics_rows(conn: Connection, facts: SessionFacts, params: MetricParams,
                              version: str) -> list[tuple[Any, ...]]:
    """The race's f1.driver_session_metrics rows, in derived_tables order."""
    if not facts.is_race:
        return []
    rows = await conn.fetch(
        DRIVER_METRICS_SQL, facts.session_key, params.fuel_s_per_kg,
        facts.qualifying_session_key, params.pit_loss_window_laps, version)
    return [tuple(r) for r in rows]
