"""The server's session clock, for live replays.

Without a clock every session is in the past and served complete. With one, real time
maps to session time: ``now = anchor + (monotonic elapsed) * speed``. A replay puts the
anchor at a session's scheduled start, so at 60x a 90-minute race runs in 90 s; a speed
of 0 freezes the clock (tests set a moment and read what exists then).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from devstack.f1.records import ts


@dataclass(frozen=True, slots=True)
class ClockState:
    anchor: float
    started: float
    speed: float
    session_key: int | None


class LiveClock:
    def __init__(self, speed: float = 60.0) -> None:
        self.default_speed = speed
        self._lock = threading.Lock()
        self._state: ClockState | None = None

    def now(self) -> float | None:
        """Session time (epoch seconds), or None when no replay is running."""
        state = self._state
        if state is None:
            return None
        return state.anchor + (time.monotonic() - state.started) * state.speed

    def set(self, at: float, speed: float = 0.0, session_key: int | None = None) -> None:
        with self._lock:
            self._state = ClockState(at, time.monotonic(), speed, session_key)

    def replay(self, session_key: int, start: float, speed: float | None = None) -> None:
        """Start replaying from ``start`` (a session's scheduled start) now."""
        self.set(start, self.default_speed if speed is None else speed, session_key)

    def clear(self) -> None:
        with self._lock:
            self._state = None

    def describe(self) -> dict[str, Any]:
        state = self._state
        now = self.now()
        return {
            "mode": "off" if state is None else ("frozen" if state.speed == 0 else "running"),
            "now": None if now is None else ts(now),
            "speed": None if state is None else state.speed,
            "session_key": None if state is None else state.session_key,
        }
