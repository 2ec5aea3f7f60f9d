"""Keep an activity's heartbeat alive through long waits and long SQL.

Progress is recorded after every page, and a background ticker sends the latest record
every third of the heartbeat timeout, so the stretches in between (a Retry-After wait,
a big merge) do not trip it. The SDK throttles `activity.heartbeat` besides.

An activity that is done within `QUIET_START_SECONDS` sends no heartbeat at all: a
stream sync of a few small pages takes a fraction of a second, and its first heartbeat
was one more RPC (and history-service write) per activity, for nothing
(benchmarks/README.md). Cancellation reaches an activity through a heartbeat's answer,
so a cancel waits for at most that long more.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict, is_dataclass
from types import TracebackType
from typing import Any

from temporalio import activity

from pipeworks.errors import ErrorCategory

QUIET_START_SECONDS = 1.0


class Heartbeater:
    def __init__(self, details: Any = None, *, quiet_start: float = QUIET_START_SECONDS
                 ) -> None:
        self._details = details
        self._quiet_start = quiet_start
        self._task: asyncio.Task[None] | None = None
        self._beating = False

    def record(self, details: Any) -> None:
        """The latest progress: sent now once heartbeats have begun (the SDK throttles
        them), else by the ticker when the quiet start is over."""
        self._details = details
        if self._beating:
            activity.heartbeat(self._payload())

    def send(self, details: Any) -> None:
        """Heartbeat `details` now, quiet start or not: what a failing attempt leaves
        for the next one."""
        self._details = details
        self._beating = True
        activity.heartbeat(self._payload())

    def _payload(self) -> Any:
        if is_dataclass(self._details) and not isinstance(self._details, type):
            return asdict(self._details)
        return self._details

    async def _tick(self, interval: float) -> None:
        await asyncio.sleep(min(self._quiet_start, interval))
        while True:
            self._beating = True
            activity.heartbeat(self._payload())
            await asyncio.sleep(interval)

    async def __aenter__(self) -> Heartbeater:
        timeout = activity.info().heartbeat_timeout
        if timeout:
            self._task = asyncio.create_task(self._tick(max(0.2, timeout.total_seconds() / 3)))
        else:  # no timeout to keep: heartbeats only carry progress and cancellation
            self._beating = True
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
