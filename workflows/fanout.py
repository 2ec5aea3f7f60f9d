"""Bounded fan-out with first-failure cancel: the work of a run's items (e.g. one child
per account, one activity per unit of work), at most `limit` at once.

Deterministic: plain asyncio tasks and a semaphore inside the workflow's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pipeworks.errors import failure_message

T = TypeVar("T")


class ItemFailed(Exception):
    """One item's failure, which ends the fan-out (unless it was isolated)."""

    def __init__(self, item: str, cause: BaseException, label: str | None = None) -> None:
        super().__init__(f"{label or item}: {failure_message(cause)}")
        self.item = item
        self.cause = cause


async def fan_out(
    items: Sequence[T], limit: int, work: Callable[[T], Awaitable[None]], *,
    stopping: Callable[[], bool], is_cancellation: Callable[[BaseException], bool],
    isolate: Callable[[T, ItemFailed], Awaitable[None]] | None = None,
    key: Callable[[T], str] = str, label: Callable[[T], str] | None = None,
) -> None:
    """Runs `work` for every item, at most `limit` at once. Items not started yet are
    skipped once `stopping()` says so. The first failure cancels the items in flight and
    is raised as `ItemFailed`; with `isolate`, a failed item is handed to it instead and
    the others go on. Cancellations are never isolated: they end the fan-out. `key` names
    an item in `ItemFailed.item`, `label` in its message (e.g. "account 42")."""
    slots = asyncio.Semaphore(limit)
    first_failure: list[ItemFailed] = []
    tasks: list[asyncio.Task[None]] = []

    async def one(item: T) -> None:
        async with slots:
            if stopping() or first_failure:
                return
            try:
                await work(item)
            except Exception as err:
                if is_cancellation(err):
                    raise
                failed = ItemFailed(key(item), err, label(item) if label else None)
                if isolate is not None:
                    await isolate(item, failed)
                    return
                if not first_failure:
                    first_failure.append(failed)
                    for task in tasks:
                        if task is not asyncio.current_task():
                            task.cancel()
                raise failed from None

    tasks.extend(asyncio.create_task(one(item)) for item in items)
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    if first_failure:
        raise first_failure[0]
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
