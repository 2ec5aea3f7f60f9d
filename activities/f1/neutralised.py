"""Neutralised periods (safety car, virtual safety car, red flag) and which laps they
neutralise: the CTEs the lap metrics query (derive_laps.py) builds on.

interfaces.md, Definitions:
- a race control phrase matches when the message starts with it, case-insensitively
  (`VIRTUAL SAFETY CAR DEPLOYED` does not start with `SAFETY CAR DEPLOYED`, so the VSC
  and SC phrases cannot be confused);
- SC: from `SAFETY CAR DEPLOYED` to the moment the leader completes the lap numbered by
  the next `SAFETY CAR IN THIS LAP` message (without one: the next `TRACK CLEAR` message
  or green flag); VSC: `VIRTUAL SAFETY CAR DEPLOYED` to the next `VIRTUAL SAFETY CAR
  ENDING`; RED: flag `RED` or a message starting `RED FLAG` (not `RED FLAG
  INFRINGEMENT`) to the next `SESSION STARTED`;
- a lap is neutralised when [date_start, date_start + lap_duration) overlaps a period
  by more than an instant (an overlap longer than `neutralised_min_overlap_s`, 0 in v1:
  any positive overlap; half-open intervals that merely touch do not overlap); a lap
  with an unknown start or duration is not; the label is the first of RED, SC, VSC.

Choices where the text is silent:
- messages without a `date` are ignored: they cannot bound a period;
- "next" is the next message by date after the start, whatever lies between, except
  for an SC: its `SAFETY CAR IN THIS LAP` and `TRACK CLEAR`/green messages are looked
  for only before the next `SAFETY CAR DEPLOYED` (a later one belongs to that period);
- an SC's end, in order: the leader's completion of lap k named by its `SAFETY CAR IN
  THIS LAP` message; when lap k has no completion (a lap missing for every driver),
  the earliest start of lap k+1; without either (or when the message has no
  `lap_number`, or there is none), the next `TRACK CLEAR` message or green flag; else
  the next `SAFETY CAR DEPLOYED` (the SC still out: that period takes over, so a re-sent
  message changes nothing); else `infinity`;
- a VSC or red flag period whose end message has not come yet (a live session), and an
  SC with none of the ends above, lasts until further notice (`infinity`);
- the leader's completion of lap k is the earliest completion of lap k by any driver
  (`timed.completed_at`: the lap's end, else the start of the driver's next lap);
- for the pace rule "the previous lap not overlapping an SC period" the previous lap is
  [date_start, completed_at): a lap without a duration that ended when the next one
  started can overlap an SC period (its label still follows the definition's
  exemption). A lap without a start overlaps nothing.

Without any race control row (a stream not fetched), a race's neutralised laps are
inferred from lap times, marked partial: a lap number is labelled 'SC' for every driver
when at least `inferred_sc_min_drivers` drivers have a time on it and more than
`inferred_sc_share` of them are slower than `inferred_sc_ratio` x their own median lap
of the session. Lap times cannot tell SC, VSC and red flag apart, hence 'SC'.

The CTEs read a CTE `timed(driver_number, lap_number, date_start, date_end,
lap_duration, completed_at)` and define `lap_marks(driver_number, lap_number, label,
overlaps_sc)`. `overlaps_sc` is there for the pace rule "the previous lap not
overlapping an SC period", which looks at SC periods whatever the label, over
[date_start, completed_at)."""

# ruff: noqa: S608 - the CTEs format in placeholders ($n) chosen by code; values are parameters

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Placeholders:
    """The query parameters (`$n`) the CTEs use: numbers chosen by the query that embeds
    them, never data."""

    session_key: str
    min_overlap_s: str
    infer: str
    ratio: str
    share: str
    min_drivers: str


def neutralised_ctes(p: Placeholders) -> str:
    """The CTEs (a list to follow `WITH ... timed AS (...),`) up to `lap_marks`."""
    return f"""
    rc AS (
        SELECT r.date, r.lap_number, upper(coalesce(r.message, '')) AS message,
               upper(coalesce(r.flag, '')) AS flag
        FROM f1.race_control r
        WHERE r.session_key = {p.session_key} AND r.date IS NOT NULL
    ), leader AS (
        SELECT t.lap_number, min(t.completed_at) AS completed_at
        FROM timed t GROUP BY t.lap_number
    ), sc_starts AS (
        SELECT d.date, (SELECT min(n.date) FROM rc n WHERE n.date > d.date
                          AND starts_with(n.message, 'SAFETY CAR DEPLOYED')) AS next_deployed
        FROM rc d WHERE starts_with(d.message, 'SAFETY CAR DEPLOYED')
    ), periods AS (
        SELECT 'SC' AS label, s.date AS starts, coalesce(
                   (SELECT l.completed_at FROM leader l WHERE l.lap_number = i.lap_number),
                   (SELECT min(t.date_start) FROM timed t WHERE t.lap_number = i.lap_number + 1),
                   (SELECT min(c.date) FROM rc c WHERE c.date > s.date
                      AND c.date < coalesce(s.next_deployed, 'infinity')
                      AND (starts_with(c.message, 'TRACK CLEAR') OR c.flag = 'GREEN')),
                   s.next_deployed, 'infinity') AS ends
        FROM sc_starts s LEFT JOIN LATERAL (
            SELECT i.lap_number FROM rc i
            WHERE i.date > s.date AND i.date < coalesce(s.next_deployed, 'infinity')
              AND starts_with(i.message, 'SAFETY CAR IN THIS LAP')
            ORDER BY i.date LIMIT 1
        ) i ON true
        UNION ALL
        SELECT 'VSC', d.date, coalesce(
                   (SELECT min(e.date) FROM rc e WHERE e.date > d.date
                      AND starts_with(e.message, 'VIRTUAL SAFETY CAR ENDING')),
                   'infinity')
        FROM rc d WHERE starts_with(d.message, 'VIRTUAL SAFETY CAR DEPLOYED')
        UNION ALL
        SELECT 'RED', d.date, coalesce(
                   (SELECT min(e.date) FROM rc e WHERE e.date > d.date
                      AND starts_with(e.message, 'SESSION STARTED')),
                   'infinity')
        FROM rc d
        WHERE (d.flag = 'RED' OR starts_with(d.message, 'RED FLAG'))
          AND NOT starts_with(d.message, 'RED FLAG INFRINGEMENT')
    ), overlapping AS (
        -- own: the lap as the label sees it, [date_start, date_start + lap_duration);
        -- the join: [date_start, completed_at), for the pace rule's previous lap.
        SELECT t.driver_number, t.lap_number,
               bool_or(p.label = 'RED' AND x.own) AS red, bool_or(p.label = 'SC' AND x.own) AS sc,
               bool_or(p.label = 'VSC' AND x.own) AS vsc, bool_or(p.label = 'SC') AS sc_span
        FROM timed t JOIN periods p
          ON least(t.completed_at, p.ends) - greatest(t.date_start, p.starts)
             > {p.min_overlap_s}::float8 * interval '1 second'
        CROSS JOIN LATERAL (
            SELECT t.date_end IS NOT NULL AND least(t.date_end, p.ends)
                   - greatest(t.date_start, p.starts)
                   > {p.min_overlap_s}::float8 * interval '1 second' AS own
        ) x
        GROUP BY t.driver_number, t.lap_number
    ), own_pace AS (
        SELECT t.driver_number,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY t.lap_duration) AS pace
        FROM timed t WHERE {p.infer}::boolean AND t.lap_duration IS NOT NULL
        GROUP BY t.driver_number
    ), inferred_sc AS (
        SELECT t.lap_number FROM timed t JOIN own_pace o ON o.driver_number = t.driver_number
        WHERE t.lap_duration IS NOT NULL
        GROUP BY t.lap_number
        HAVING count(*) >= {p.min_drivers}::int
           AND count(*) FILTER (WHERE t.lap_duration > {p.ratio}::float8 * o.pace)
               > {p.share}::float8 * count(*)
    ), lap_marks AS (
        SELECT t.driver_number, t.lap_number,
               CASE WHEN o.red THEN 'RED'
                    WHEN o.sc OR i.lap_number IS NOT NULL THEN 'SC'
                    WHEN o.vsc THEN 'VSC' END AS label,
               coalesce(o.sc_span, false) OR i.lap_number IS NOT NULL AS overlaps_sc
        FROM timed t
        LEFT JOIN overlapping o
          ON o.driver_number = t.driver_number AND o.lap_number = t.lap_number
        LEFT JOIN inferred_sc i ON i.lap_number = t.lap_number
    )"""
