"""Whether a session's derived rows are current: computed for every lap it has, under
the active metric version. A sync that changed no raw row skips the derivation unless
they are not (a new metric version, activated to roll forward or back, is applied by
the session's next sync)."""

from __future__ import annotations

from pipeworks.db import Connection


async def up_to_date(conn: Connection, session_key: int) -> bool:
    current: bool | None = await conn.fetchval(
        """
        SELECT (SELECT count(*) FROM f1.laps WHERE session_key = $1)
             = (SELECT count(*) FROM f1.lap_metrics m
                WHERE m.session_key = $1 AND m.metric_version =
                      (SELECT version FROM f1.metric_params WHERE active))
        """, session_key)
    return bool(current)
