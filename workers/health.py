"""`/healthz` (the process is alive) and `/readyz` (it can do work: Temporal and Postgres
answer and it is not draining), served on PIPEWORKS_HEALTH_ADDRESS.

Plain asyncio HTTP/1.1: two read-only GETs do not justify a web framework in the worker.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

WorkerStateName = Literal["starting", "idle", "processing", "draining", "error"]
CHECK_TIMEOUT_SECONDS = 2.0
# Probes arrive every few seconds from several places (orchestrator, `pipeworks health`);
# one round of checks serves them all for this long.
CHECK_CACHE_SECONDS = 1.0
MAX_REQUEST_BYTES = 8192

Check = Callable[[], Awaitable[object]]


@dataclass
class WorkerState:
    """What the worker is doing, as the health endpoints report it."""

    task_queue: str = ""
    started: bool = False
    draining: bool = False
    failure: str | None = None       # the worker stopped on an error
    in_flight_activities: int = 0
    completed_activities: int = 0
    checks: dict[str, str] = field(default_factory=dict)

    def activity_started(self) -> None:
        self.in_flight_activities += 1

    def activity_finished(self) -> None:
        self.in_flight_activities -= 1
        self.completed_activities += 1

    @property
    def dependencies_ok(self) -> bool:
        return bool(self.checks) and all(v == "ok" for v in self.checks.values())

    @property
    def name(self) -> WorkerStateName:
        if self.failure is not None or (self.checks and not self.dependencies_ok):
            return "error"
        if self.draining:
            return "draining"
        if not self.started:
            return "starting"
        return "processing" if self.in_flight_activities else "idle"

    @property
    def ready(self) -> bool:
        return self.started and not self.draining and self.failure is None \
            and self.dependencies_ok

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.name, "ready": self.ready, "task_queue": self.task_queue,
            "pid": os.getpid(), "in_flight_activities": self.in_flight_activities,
            "completed_activities": self.completed_activities, "checks": dict(self.checks),
            **({"error": self.failure} if self.failure else {}),
        }


class HealthServer:
    def __init__(self, address: str, state: WorkerState, checks: dict[str, Check]) -> None:
        host, _, port = address.rpartition(":")
        self._host, self._port = host.strip("[]"), int(port)
        self._state = state
        self._checks = checks
        self._checked_at = float("-inf")
        self._checking: asyncio.Lock = asyncio.Lock()
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._host, self._port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def refresh_checks(self) -> None:
        async with self._checking:
            if time.monotonic() - self._checked_at < CHECK_CACHE_SECONDS:
                return
            results = await asyncio.gather(*(self._run(c) for c in self._checks.values()))
            self._state.checks = dict(zip(self._checks, results, strict=True))
            self._checked_at = time.monotonic()

    @staticmethod
    async def _run(check: Check) -> str:
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
        except TimeoutError:
            return f"error: no answer within {CHECK_TIMEOUT_SECONDS:g} s"
        except Exception as err:
            return f"error: {type(err).__name__}: {str(err)[:200]}"
        return "ok"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            method, path = _request_line(head[:MAX_REQUEST_BYTES])
            status, body = await self._respond(method, path)
            payload = json.dumps(body).encode()
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError):
            pass
        finally:
            writer.close()

    async def _respond(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        if method != "GET":
            return "405 Method Not Allowed", {"error": "only GET"}
        route = path.split("?", 1)[0]
        if route == "/healthz":
            return "200 OK", {"alive": True, **self._state.as_dict()}
        if route == "/readyz":
            await self.refresh_checks()
            body = self._state.as_dict()
            return ("200 OK" if body["ready"] else "503 Service Unavailable"), body
        return "404 Not Found", {"error": f"no such endpoint {route!r}; try /healthz, /readyz"}


def _request_line(head: bytes) -> tuple[str, str]:
    parts = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
    return (parts[0], parts[1]) if len(parts) >= 2 else ("", "")
