"""f1.anomalies of one session, from the raw rows and the metrics just merged. Each has a
`kind`, an `anomaly_key` naming it within its kind, the driver and lap when it has one,
and a `detail` with the numbers that flagged it:

- `lap_time` (races): a valid lap whose modified z-score among the valid laps of its
  lap number, 0.6745 x (t - median) / MAD (Iglewicz and Hoaglin's robust z, for which
  3.5 is the customary threshold), exceeds z_score_threshold in absolute value; lap
  numbers with fewer than z_score_min_laps valid laps or a MAD of 0 are skipped;
  key `<driver>/<lap>`;
- `position_jump` (races): the driver's position at the end of lap n differs from lap
  n-1 by position_jump or more, with no pit stop of his on lap n-1 or n and neither of
  his two laps neutralised; key `<driver>/<lap>`;
- `pit_lane_time` (races): a lane_duration outside the session's Tukey fences
  [Q1 - k IQR, Q3 + k IQR] (k = pit_lane_tukey_k), with at least pit_lane_min_stops
  timed stops; key `<driver>/<lap>`;
- `degradation` (any session): a stint degradation outside [min_degradation_s_per_lap,
  max_degradation_s_per_lap]; key `<driver>/<stint>`, lap = the stint's first lap;
- `weather_step` (any session): track or air temperature changing by more than
  weather_step_track_c / weather_step_air_c between consecutive weather rows; key the
  later row's date (UTC, ISO 8601), no driver or lap.

Lap-time and position anomalies need laps comparable across drivers, and pit lane times
outside races include garage visits: those kinds are computed for races only."""

from __future__ import annotations

from typing import Any

from activities.f1.derive_facts import SessionFacts
from activities.f1.params import MetricParams
from pipeworks.db import Connection

ANOMALIES_SQL = """
WITH valid AS (
    SELECT m.driver_number, m.lap_number, l.lap_duration
    FROM f1.lap_metrics m
    JOIN f1.laps l ON l.session_key = m.session_key AND l.driver_number = m.driver_number
                  AND l.lap_number = m.lap_number
    WHERE m.session_key = $1 AND m.valid_for_pace AND $2::boolean
), lap_centre AS (
    SELECT v.lap_number, count(*) AS laps,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY v.lap_duration) AS median
    FROM valid v GROUP BY v.lap_number
), lap_spread AS (
    SELECT v.lap_number, c.median,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(v.lap_duration - c.median)) AS mad
    FROM valid v JOIN lap_centre c ON c.lap_number = v.lap_number
    WHERE c.laps >= $4::int
    GROUP BY v.lap_number, c.median
), lap_z AS (
    SELECT v.*, s.median, s.mad, 0.6745 * (v.lap_duration - s.median) / s.mad AS z
    FROM valid v JOIN lap_spread s ON s.lap_number = v.lap_number
    WHERE s.mad > 0
), quartiles AS (
    SELECT count(*) AS stops,
           percentile_cont(0.25) WITHIN GROUP (ORDER BY p.lane_duration) AS q1,
           percentile_cont(0.75) WITHIN GROUP (ORDER BY p.lane_duration) AS q3
    FROM f1.pit_stops p WHERE p.session_key = $1 AND p.lane_duration IS NOT NULL
), fences AS (
    SELECT q.q1 - $6::float8 * (q.q3 - q.q1) AS low, q.q3 + $6::float8 * (q.q3 - q.q1) AS high
    FROM quartiles q WHERE q.stops >= $7::int AND $2::boolean
), weather AS (
    SELECT w.date, w.track_temperature AS track, w.air_temperature AS air,
           lag(w.date) OVER o AS prev_date, lag(w.track_temperature) OVER o AS prev_track,
           lag(w.air_temperature) OVER o AS prev_air
    FROM f1.weather w WHERE w.session_key = $1
    WINDOW o AS (ORDER BY w.date)
)
SELECT $1::int, 'lap_time', z.driver_number || '/' || z.lap_number, z.driver_number,
       z.lap_number,
       jsonb_build_object('lap_duration', round(z.lap_duration::numeric, 6),
                          'median', round(z.median::numeric, 6),
                          'mad', round(z.mad::numeric, 6), 'z', round(z.z::numeric, 6)),
       $12::text
FROM lap_z z WHERE abs(z.z) > $3::float8
UNION ALL
SELECT $1, 'position_jump', c.driver_number || '/' || c.lap_number, c.driver_number,
       c.lap_number, jsonb_build_object('from', p.position, 'to', c.position), $12
FROM f1.lap_metrics c
JOIN f1.lap_metrics p ON p.session_key = c.session_key AND p.driver_number = c.driver_number
                     AND p.lap_number = c.lap_number - 1
WHERE c.session_key = $1 AND $2::boolean
  AND abs(c.position - p.position) >= $5::int
  AND c.neutralised IS NULL AND p.neutralised IS NULL
  AND NOT EXISTS (SELECT 1 FROM f1.pit_stops s
                  WHERE s.session_key = $1 AND s.driver_number = c.driver_number
                    AND s.lap_number BETWEEN c.lap_number - 1 AND c.lap_number)
UNION ALL
SELECT $1, 'pit_lane_time', p.driver_number || '/' || p.lap_number, p.driver_number,
       p.lap_number,
       jsonb_build_object('lane_duration', round(p.lane_duration::numeric, 6),
                          'low', round(f.low::numeric, 6), 'high', round(f.high::numeric, 6)),
       $12
FROM f1.pit_stops p CROSS JOIN fences f
WHERE p.session_key = $1 AND (p.lane_duration < f.low OR p.lane_duration > f.high)
UNION ALL
SELECT $1, 'degradation', s.driver_number || '/' || s.stint_number, s.driver_number,
       (SELECT min(m.lap_number) FROM f1.lap_metrics m WHERE m.session_key = $1
          AND m.driver_number = s.driver_number AND m.stint_number = s.stint_number),
       jsonb_build_object('stint_number', s.stint_number,
                          'degradation_s_per_lap', s.degradation_s_per_lap,
                          'valid_laps', s.valid_laps),
       $12
FROM f1.stint_metrics s
WHERE s.session_key = $1
  AND (s.degradation_s_per_lap < $8::float8::numeric
       OR s.degradation_s_per_lap > $9::float8::numeric)
UNION ALL
SELECT $1, 'weather_step', to_char(w.date AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
       NULL::int, NULL::int,
       jsonb_build_object('previous', to_char(w.prev_date AT TIME ZONE 'UTC',
                                              'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                          'track_temperature', jsonb_build_array(w.prev_track, w.track),
                          'air_temperature', jsonb_build_array(w.prev_air, w.air)),
       $12
FROM weather w
WHERE abs(w.track - w.prev_track) > $10::float8 OR abs(w.air - w.prev_air) > $11::float8
ORDER BY 2, 3
"""


async def anomaly_rows(conn: Connection, facts: SessionFacts, params: MetricParams,
                       version: str) -> list[tuple[Any, ...]]:
    """The session's f1.anomalies rows, in derived_tables.ANOMALIES order. Runs after
    lap and stint metrics are merged: it reads them."""
    rows = await conn.fetch(
        ANOMALIES_SQL, facts.session_key, facts.is_race, params.z_score_threshold,
        params.z_score_min_laps, params.position_jump, params.pit_lane_tukey_k,
        params.pit_lane_min_stops, params.min_degradation_s_per_lap,
        params.max_degradation_s_per_lap, params.weather_step_track_c,
        params.weather_step_air_c, version)
    return [tuple(r) for r in rows]
