"""A log of RPC calls (each element of a batch is one call), next to the HTTP request
log (devstack/http_stats.py): which methods were called, with which params and outcome,
and when, on the same clock as the request log, so that a test can prove that no call
arrived during an interval (e.g. while a client's circuit breaker was open)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from typing import Any

# seq, started (stats clock), wall time, method, params, id, jsonrpc, error, duration (s).
_Raw = tuple[int, float, float, str, Any, Any, str, int | None, float]


def _plain(value: Any) -> Any:
    """Params as plain JSON values (decimal numbers as their text)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


class RpcLog:
    def __init__(self, clock: Callable[[], float], size: int = 10_000) -> None:
        self._clock = clock
        self._size = size
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._total = 0
            self._by_method: dict[str, dict[str, int]] = {}
            # Raw records (_Raw), turned into dicts when read: recording stays cheap.
            self._log: deque[_Raw] = deque(maxlen=self._size)

    def record(self, *, started: float, method: str, params: Any, request_id: Any,
               version: str, error: int | None, duration_s: float) -> None:
        """``started`` is the stats clock's time when the call began."""
        wall = time.time() - (self._clock() - started)
        with self._lock:
            self._total += 1
            counts = self._by_method.get(method)
            if counts is None:
                counts = self._by_method[method] = {"calls": 0, "errors": 0}
            counts["calls"] += 1
            if error is not None:
                counts["errors"] += 1
            self._log.append((self._total, started, wall, method, params, request_id, version,
                              error, duration_s))

    def _entries(self) -> list[dict[str, Any]]:
        """The log as dicts (callers hold the lock)."""
        return [{"seq": seq, "t": round(started, 6), "wall": round(wall, 6), "method": method,
                 "params": _plain(params), "id": _plain(request_id), "jsonrpc": version,
                 "error": error, "duration_ms": round(duration_s * 1000.0, 3)}
                for (seq, started, wall, method, params, request_id, version, error,
                     duration_s) in self._log]

    def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [entry for entry in self._entries()
                    if method is None or entry["method"] == method]

    def count(self, method: str | None = None) -> int:
        with self._lock:
            if method is None:
                return self._total
            return self._by_method.get(method, {}).get("calls", 0)

    def between(self, start: float, end: float) -> list[dict[str, Any]]:
        """Calls that began within [start, end] on the stats clock."""
        with self._lock:
            return [entry for entry in self._entries() if start <= entry["t"] <= end]

    def snapshot(self, *, log: bool = True, since_seq: int = 0) -> dict[str, Any]:
        with self._lock:
            return {"total": self._total,
                    "by_method": {m: dict(c) for m, c in self._by_method.items()},
                    "log": [e for e in self._entries() if e["seq"] > since_seq] if log
                    else [],
                    "log_capacity": self._size}
