"""AIMD concurrency for requests to one node (btc-rpc.md, Capacity): at most `limit`
requests in flight; a sign of overload (a 503 "Work queue depth exceeded", a timeout)
halves it, each success adds 1/limit, so it climbs back by about one per round trip of
the whole window. The node's work queue, not a guess, decides how hard we push."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import TypeVar

T = TypeVar("T")
U = TypeVar("U")


class AimdLimit:
    def __init__(self, maximum: int, *, minimum: int = 1) -> None:
        if not 1 <= minimum <= maximum:
            raise ValueError(f"need 1 <= minimum ({minimum}) <= maximum ({maximum})")
        self.maximum = maximum
        self.minimum = minimum
        self._limit = float(maximum)
        self._in_flight = 0
        self._changed = asyncio.Condition()
        self.decreases = 0

    @property
    def limit(self) -> int:
        return max(self.minimum, int(self._limit))

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._changed:
            try:
                await self._changed.wait_for(lambda: self._in_flight < self.limit)
            except BaseException:
                # Cancelled, perhaps after a wake-up meant for it: pass it on.
                self._wake()
                raise
            self._in_flight += 1
        try:
            yield
        finally:
            async with self._changed:
                self._in_flight -= 1
                self._wake()

    def _wake(self) -> None:
        """Wakes as many waiters as there are free slots (the lock is held). Waking
        every waiter on each release cost a task step per waiter per request: a batch
        of 5,000 heights queues 400 requests."""
        self._changed.notify(max(0, self.limit - self._in_flight))

    def overloaded(self) -> None:
        self._limit = max(float(self.minimum), self._limit / 2)
        self.decreases += 1

    def succeeded(self) -> None:
        self._limit = min(float(self.maximum), self._limit + 1 / max(self._limit, 1.0))


async def all_or_none(*awaitables: Awaitable[T]) -> list[T]:
    """Like `asyncio.gather`, but the first failure cancels the others and is raised as
    itself: with gather, the siblings of a failed call went on retrying against the
    node after the activity had already failed (and the breaker had opened)."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_awaited(a)) for a in awaitables]
    except BaseExceptionGroup as failed:
        first = failed.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    return [task.result() for task in tasks]


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


async def both(first: Awaitable[T], second: Awaitable[U]) -> tuple[T, U]:
    """Two calls at once, as `all_or_none`."""
    results = await all_or_none(_as_object(first), _as_object(second))
    return results[0], results[1]  # type: ignore[return-value]


async def _as_object(awaitable: Awaitable[object]) -> object:
    return await awaitable
