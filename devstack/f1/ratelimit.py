"""A per-client sliding-window request limit, as OpenF1 applies one per IP."""

from __future__ import annotations

import math
import threading
from collections import deque


class RateLimiter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accepted: dict[str, deque[float]] = {}

    def admit(self, client: str, now: float, limit: int, window_s: float) -> float | None:
        """None when the request is within the limit (and counted), else the seconds
        until the window has room again. Refused requests are not counted."""
        with self._lock:
            times = self._accepted.setdefault(client, deque())
            while times and times[0] <= now - window_s:
                times.popleft()
            if len(times) >= limit:
                return times[0] + window_s - now
            times.append(now)
            return None

    def clear(self) -> None:
        with self._lock:
            self._accepted.clear()


def retry_after_header(wait_s: float) -> str:
    """Whole seconds, rounded up and at least 1 (a client waits at least this long)."""
    return str(max(1, math.ceil(wait_s)))
