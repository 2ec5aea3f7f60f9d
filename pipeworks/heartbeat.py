"""Keep an activity's heartbeat alive through long waits and long SQL.

The SDK throttles `activity.heartbeat`, so recording progress after every page
is cheap; the background ticker covers the stretches in between (a Retry-After
wait, a big merge) that would otherwise trip the heartbeat timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict, is_dataclass
from types import TracebackType
from typing import Any

from temporalio import activity

from pipeworks.errors import ErrorCategory


class Heartbeater:
    def __init__(self, details: Any = None) -> None:
        self._details = details
        self._task: asyncio.Task[None] | None = None

    def record(self, details: Any) -> None:
        self._details = details
        activity.heartbeat(self._payload())

    def _payload(self) -> Any:
        if is_dataclass(self._details) and not isinstance(self._details, type):
            return asdict(self._details)
        return self._details

    async def _tick(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            activity.heartbeat(self._payload())

    async def __aenter__(self) -> Heartbeater:
        timeout = activity.info().heartbeat_timeout
        if timeout:
            self._task = asyncio.create_task(self._tick(max(0.2, timeout.total_seconds() / 3)))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def carried_errors() -> tuple[dict[str, int], int]:
    """Errors earlier attempts of this activity recorded, and how many attempts
    failed. An attempt that failed without recording (its worker was lost, or it
    timed out) counts as a system error."""
    previous = previous_details() or {}
    raw = previous.get("errors")
    errors = {c.value: 0 for c in ErrorCategory}
    if isinstance(raw, dict):
        for key, n in raw.items():
            errors[str(key)] = errors.get(str(key), 0) + int(n)
    failed = previous.get("failed_attempts")
    failed = failed if isinstance(failed, int) else 0
    lost = activity.info().attempt - 1 - failed
    if lost > 0:
        errors[ErrorCategory.SYSTEM.value] += lost
        failed += lost
    return errors, failed


def record_failure(category: ErrorCategory, errors: dict[str, int], failed_attempts: int,
                   *, already_counted: bool = False, **details: Any) -> dict[str, int]:
    """Heartbeat the tally before the attempt fails, so the next attempt (and the
    workflow, through the final error's details) knows what happened."""
    errors = dict(errors)
    if not already_counted:
        errors[category.value] = errors.get(category.value, 0) + 1
    activity.heartbeat({**details, "errors": errors, "failed_attempts": failed_attempts + 1})
    return errors


def previous_details() -> dict[str, Any] | None:
    """Details the last attempt heartbeated; they come back as a plain dict."""
    details = activity.info().heartbeat_details
    if details and isinstance(details[0], dict):
        return details[0]
    return None
