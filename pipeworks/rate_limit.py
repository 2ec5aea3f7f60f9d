"""A request rate that holds across every worker process: the schedule of request
slots lives in one Postgres row, and each request reserves the next free slot.

GCRA with no burst: one short UPDATE per request, the row lock orders the callers,
and a caller sleeps until its slot. Only used when PIPEWORKS_UPSTREAM_RATE_LIMIT is set.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg

_RESERVE = """
INSERT INTO pipeline.rate_limits AS r (name, next_slot) VALUES ($1, clock_timestamp() + $2)
ON CONFLICT (name) DO UPDATE SET next_slot = greatest(r.next_slot, clock_timestamp()) + $2
RETURNING extract(epoch FROM r.next_slot - $2 - clock_timestamp())::float8
"""


class SharedRateLimit:
    def __init__(self, pool: asyncpg.Pool, name: str, per_second: float) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self._pool = pool
        self._name = name
        self._spacing = timedelta(seconds=1.0 / per_second)

    async def acquire(self) -> float:
        """Waits for this caller's slot; returns how long it waited (seconds)."""
        wait: float = await self._pool.fetchval(_RESERVE, self._name, self._spacing)
        if wait > 0:
            await asyncio.sleep(wait)
        return max(0.0, wait)
