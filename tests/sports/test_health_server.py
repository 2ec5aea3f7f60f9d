"""The health endpoints' answers for each worker state, with checks that fail on purpose."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from starters.cli import run_command
from workers.health import HealthServer, WorkerState


class Dependency:
    def __init__(self) -> None:
        self.failure: Exception | None = None
        self.hang = False

    async def check(self) -> object:
        if self.hang:
            await asyncio.sleep(60)
        if self.failure is not None:
            raise self.failure
        return True


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[HealthServer, WorkerState, Dependency]]:
    state, postgres = WorkerState(task_queue="q", started=True), Dependency()

    async def temporal_ok() -> object:
        return True

    server = HealthServer("127.0.0.1:0", state, {"temporal": temporal_ok,
                                                  "postgres": postgres.check})
    await server.start()
    try:
        yield server, state, postgres
    finally:
        await server.close()


async def get(server: HealthServer, path: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.get(f"http://127.0.0.1:{server.port}{path}")


async def test_ready_idle_then_processing(
    served: tuple[HealthServer, WorkerState, Dependency]
) -> None:
    server, state, _ = served
    ready = await get(server, "/readyz")
    assert ready.status_code == 200
    assert ready.json()["state"] == "idle" and ready.json()["ready"] is True
    state.activity_started()
    assert (await get(server, "/healthz")).json()["state"] == "processing"
    state.activity_finished()
    body = (await get(server, "/healthz")).json()
    assert body["state"] == "idle" and body["completed_activities"] == 1


async def test_a_failing_dependency_is_an_error_and_not_ready(
    served: tuple[HealthServer, WorkerState, Dependency]
) -> None:
    server, _, postgres = served
    postgres.failure = ConnectionRefusedError("connection refused")
    response = await get(server, "/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["state"] == "error" and body["ready"] is False
    assert body["checks"]["postgres"].startswith("error: ConnectionRefusedError")
    assert body["checks"]["temporal"] == "ok"
    # Alive all the same: a liveness probe must not restart a worker whose database is down.
    assert (await get(server, "/healthz")).status_code == 200


async def test_a_dependency_that_does_not_answer_times_out(
    served: tuple[HealthServer, WorkerState, Dependency]
) -> None:
    server, _, postgres = served
    postgres.hang = True
    body = (await get(server, "/readyz")).json()
    assert body["checks"]["postgres"].startswith("error: no answer within")


async def test_draining_is_not_ready(
    served: tuple[HealthServer, WorkerState, Dependency]
) -> None:
    server, state, _ = served
    state.draining = True
    response = await get(server, "/readyz")
    assert response.status_code == 503 and response.json()["state"] == "draining"


async def test_unknown_paths_and_methods(
    served: tuple[HealthServer, WorkerState, Dependency]
) -> None:
    server, _, _ = served
    assert (await get(server, "/nope")).status_code == 404
    async with httpx.AsyncClient() as http:
        response = await http.post(f"http://127.0.0.1:{server.port}/readyz")
    assert response.status_code == 405


async def test_health_command_exit_status_follows_readiness(
    served: tuple[HealthServer, WorkerState, Dependency], capsys: pytest.CaptureFixture[str]
) -> None:
    server, _, postgres = served
    address = f"127.0.0.1:{server.port}"
    assert await asyncio.to_thread(run_command, ["health", "--address", address]) == 0
    assert "idle" in capsys.readouterr().out
    postgres.failure = OSError("no route")
    await asyncio.sleep(1.1)  # past the checks' cache
    code = await asyncio.to_thread(run_command, ["health", "--address", address, "--json"])
    assert code == 1 and json.loads(capsys.readouterr().out)["state"] == "error"
