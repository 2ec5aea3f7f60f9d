"""A request rate that holds across every worker process: the schedule of request
slots lives in one Postgres row, and each request reserves the next free slot.

GCRA with no burst: one short UPDATE per request; the row lock orders the callers, and
a caller sleeps until its slot. A slot is only reserved within `horizon` of now: a
caller further back waits without holding one, so callers that give up (a cancelled
activity) waste at most a horizon's worth of slots. Only used when
PIPEWORKS_UPSTREAM_RATE_LIMIT is set.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg

from pipeworks.errors import TransientError

_CREATE = """
INSERT INTO pipeline.rate_limits (name, next_slot) VALUES ($1, clock_timestamp())
ON CONFLICT (name) DO NOTHING
"""
# Reserves the next slot if it is within the horizon; returns seconds until the slot.
_RESERVE = """
UPDATE pipeline.rate_limits
SET next_slot = greatest(next_slot, clock_timestamp()) + $2::interval
WHERE name = $1 AND next_slot <= clock_timestamp() + $3::interval
RETURNING extract(epoch FROM (next_slot - $2::interval) - clock_timestamp())::float8
"""
_BACKLOG = """
SELECT extract(epoch FROM next_slot - clock_timestamp())::float8
FROM pipeline.rate_limits WHERE name = $1
"""


class SharedRateLimit:
    def __init__(self, pool: asyncpg.Pool, name: str, per_second: float, *,
                 horizon_seconds: float = 2.0, max_wait_seconds: float = 30.0) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self._pool = pool
        self._name = name
        self._spacing = timedelta(seconds=1.0 / per_second)
        self._horizon = timedelta(seconds=max(horizon_seconds, 2.0 / per_second))
        self._max_wait = max_wait_seconds
        self._created = False

    async def _ensure_row(self) -> None:
        if not self._created:
            await self._pool.execute(_CREATE, self._name)
            self._created = True

    async def try_acquire(self) -> float | None:
        """Takes a slot now if one is free within the horizon (the burst a caller may
        run ahead of the rate) and returns None; else returns the seconds until one
        is, taking nothing (an HTTP server answers 429 with that as Retry-After)."""
        await self._ensure_row()
        taken = await self._pool.fetchval(_RESERVE, self._name, self._spacing, self._horizon)
        if taken is not None:
            return None
        backlog: float | None = await self._pool.fetchval(_BACKLOG, self._name)
        return max((backlog or 0.0) - self._horizon.total_seconds(),
                   self._spacing.total_seconds())

    async def acquire(self) -> float:
        """Waits for this caller's slot; returns how long it waited (seconds).

        Raises TransientError when no slot comes within `max_wait_seconds`: the caller's
        retry (in-process or Temporal's) then waits its turn like any other."""
        await self._ensure_row()
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            wait: float | None = await self._pool.fetchval(
                _RESERVE, self._name, self._spacing, self._horizon)
            if wait is not None:
                if wait > 0:
                    await asyncio.sleep(wait)
                return loop.time() - started
            backlog = await self._pool.fetchval(_BACKLOG, self._name) or 0.0
            waited = loop.time() - started
            if waited + backlog > self._max_wait:
                raise TransientError(
                    f"upstream rate limit {self._name}: no request slot within "
                    f"{self._max_wait:g} s ({backlog:.1f} s of requests queued)",
                    retry_after=min(backlog, self._max_wait))
            await asyncio.sleep(max(0.05, backlog - self._horizon.total_seconds()))
