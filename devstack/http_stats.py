"""Request counters and a bounded request log, for tests that check client behaviour.

Each log record carries the arrival time on the server's monotonic clock (seconds since
the stats were created), so a test can prove e.g. that no retry arrived before a
Retry-After had elapsed, independent of wall-clock adjustments.

With ``rate_window_s`` set, the stats also keep the most requests that arrived within any
window of that length (sliding, not aligned to a grid), so a test can prove that a client
kept under a rate limit for a whole run even after the bounded log has wrapped.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any


class Stats:
    def __init__(self, log_size: int = 10_000, rate_window_s: float | None = None) -> None:
        self._lock = threading.Lock()
        self._log_size = log_size
        self._rate_window_s = rate_window_s
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._origin = time.monotonic()
            self._total = 0
            self._by_route: dict[str, dict[str, int]] = {}
            self._by_status: dict[str, int] = {}
            self._log: deque[dict[str, Any]] = deque(maxlen=self._log_size)
            self._window: deque[float] = deque()
            self._peak = 0
            self._peak_at: float | None = None

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
            self._count_in_window(arrived)
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

    def _count_in_window(self, arrived: float) -> None:
        """Requests within ``rate_window_s`` up to this arrival; the caller holds the lock.

        Arrivals are recorded when answered, so they can come slightly out of order; a
        late one only joins the windows that still reach it.
        """
        if self._rate_window_s is None:
            return
        window = self._window
        window.append(arrived)
        if len(window) > 1 and arrived < window[-2]:
            window = deque(sorted(window))
            self._window = window
        newest = window[-1]
        while window and window[0] <= newest - self._rate_window_s:
            window.popleft()
        if len(window) > self._peak:
            self._peak = len(window)
            self._peak_at = round(newest - self._origin, 6)

    def snapshot(
        self, *, log: bool = True, since_seq: int = 0, log_limit: int | None = None
    ) -> dict[str, Any]:
        with self._lock:
            entries = [entry for entry in self._log if entry["seq"] > since_seq] if log else []
            if log_limit is not None:
                entries = entries[-log_limit:] if log_limit > 0 else []
            snapshot: dict[str, Any] = {
                "total": self._total,
                "by_route": {route: dict(counts) for route, counts in self._by_route.items()},
                "by_status": dict(self._by_status),
                "log": [dict(entry) for entry in entries],
                "log_capacity": self._log_size,
            }
            if self._rate_window_s is not None:
                snapshot["rate_window_s"] = self._rate_window_s
                snapshot["peak_requests_per_window"] = self._peak
                snapshot["peak_window_end_t"] = self._peak_at
            return snapshot

    @property
    def peak_requests_per_window(self) -> int:
        """The most requests within any ``rate_window_s`` (0 without a window)."""
        with self._lock:
            return self._peak

    @property
    def total(self) -> int:
        with self._lock:
            return self._total

    def log(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._log]
