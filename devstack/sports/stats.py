"""Request counters and a bounded request log, for tests that check client behaviour.

Each log record carries the arrival time on the server's monotonic clock (seconds since
the stats were created), so a test can prove e.g. that no retry arrived before a
Retry-After had elapsed, independent of wall-clock adjustments.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any


class Stats:
    def __init__(self, log_size: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._log_size = log_size
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._origin = time.monotonic()
            self._total = 0
            self._by_route: dict[str, dict[str, int]] = {}
            self._by_status: dict[str, int] = {}
            self._log: deque[dict[str, Any]] = deque(maxlen=self._log_size)

    def now(self) -> float:
        """Seconds on the stats clock, comparable with the log's ``t``."""
        return time.monotonic() - self._origin

    def record(
        self,
        *,
        arrived: float,
        method: str,
        path: str,
        query: str,
        route: str,
        status: int | None,
        fault: str | None,
        duration_s: float,
    ) -> None:
        """``arrived`` is ``time.monotonic()`` at arrival; ``status`` None means dropped."""
        outcome = "dropped" if status is None else str(status)
        with self._lock:
            self._total += 1
            per_route = self._by_route.setdefault(route, {})
            per_route[outcome] = per_route.get(outcome, 0) + 1
            self._by_status[outcome] = self._by_status.get(outcome, 0) + 1
            self._log.append(
                {
                    "seq": self._total,
                    "t": round(arrived - self._origin, 6),
                    "wall": round(time.time() - (time.monotonic() - arrived), 6),
                    "method": method,
                    "path": path,
                    "query": query,
                    "route": route,
                    "status": status,
                    "fault": fault,
                    "duration_ms": round(duration_s * 1000.0, 3),
                }
            )

    def snapshot(
        self, *, log: bool = True, since_seq: int = 0, log_limit: int | None = None
    ) -> dict[str, Any]:
        with self._lock:
            entries = [entry for entry in self._log if entry["seq"] > since_seq] if log else []
            if log_limit is not None:
                entries = entries[-log_limit:] if log_limit > 0 else []
            return {
                "total": self._total,
                "by_route": {route: dict(counts) for route, counts in self._by_route.items()},
                "by_status": dict(self._by_status),
                "log": [dict(entry) for entry in entries],
                "log_capacity": self._log_size,
            }

    @property
    def total(self) -> int:
        with self._lock:
            return self._total

    def log(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._log]
