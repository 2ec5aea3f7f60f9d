"""What the derive queries need to know about a session besides its rows: its kind,
the race distance, which streams are missing, whose starting grid is its grid."""

from __future__ import annotations

from dataclasses import dataclass

from pipeworks.db import Connection


@dataclass(frozen=True)
class SessionFacts:
    """What the derive queries need to know about a session besides its rows."""

    session_key: int
    is_race: bool
    race_laps: int | None           # L: the winner's number_of_laps, else the highest lap
    race_control_missing: bool      # laps but no race_control row at all
    stintless_drivers: tuple[int, ...]  # laps but no stints row: stints inferred
    qualifying_session_key: int | None  # whose starting_grid is this race's grid


# A race's qualifying session, whose key f1.starting_grid rows carry (f1-api.md).
# "Sprint Shootout" is 2023's name of Sprint Qualifying.
_FACTS_SQL = """
SELECT s.session_type, s.session_name,
       (SELECT r.number_of_laps FROM f1.session_results r
        WHERE r.session_key = $1 AND r.position = 1 AND r.number_of_laps > 0
        ORDER BY r.driver_number LIMIT 1) AS winner_laps,
       (SELECT max(l.lap_number) FROM f1.laps l WHERE l.session_key = $1) AS max_lap,
       EXISTS (SELECT 1 FROM f1.race_control c WHERE c.session_key = $1) AS has_race_control,
       ARRAY(SELECT DISTINCT l.driver_number FROM f1.laps l
             WHERE l.session_key = $1 AND NOT EXISTS (
                 SELECT 1 FROM f1.stints t
                 WHERE t.session_key = $1 AND t.driver_number = l.driver_number)
             ORDER BY 1) AS stintless,
       (SELECT q.session_key FROM f1.sessions q
        WHERE q.meeting_key = s.meeting_key
          AND q.session_name = ANY(CASE s.session_name
                                   WHEN 'Race' THEN ARRAY['Qualifying']
                                   WHEN 'Sprint' THEN ARRAY['Sprint Qualifying', 'Sprint Shootout']
                                   END)
        ORDER BY q.date_start DESC LIMIT 1) AS qualifying_key
FROM (SELECT $1::int AS session_key) k
LEFT JOIN f1.sessions s ON s.session_key = k.session_key
"""


async def session_facts(conn: Connection, session_key: int) -> SessionFacts:
    """Session type, race distance L, missing streams, the qualifying session's key.
    A session not (yet) in f1.sessions is taken for a race: derive may run before the
    calendar row is merged, and races are what the metrics are for."""
    row = await conn.fetchrow(_FACTS_SQL, session_key)
    assert row is not None
    max_lap: int | None = row["max_lap"]
    return SessionFacts(
        session_key=session_key,
        is_race=row["session_type"] in (None, "Race"),
        race_laps=row["winner_laps"] or max_lap,
        race_control_missing=max_lap is not None and not row["has_race_control"],
        stintless_drivers=tuple(row["stintless"]),
        qualifying_session_key=row["qualifying_key"],
    )
