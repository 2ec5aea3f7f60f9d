"""`pipeworks serve`'s app on a real uvicorn server on a free loopback port, inside the
test's event loop (so tests may register pipelines of their own), with test keys."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from devstack.processes import free_port
from pipeworks.db import Connection
from pipeworks.settings import Settings
from pipeworks.web_settings import WebSettings
from starters.web.app import create_app

VIEWER_KEY = "viewer-key-0123456789abcdef"
OPERATOR_KEY = "operator-key-0123456789abcdef"
KEYS = f"ada:viewer:{VIEWER_KEY},ops:operator:{OPERATOR_KEY}"


PROBLEM = "application/problem+json"


def is_problem(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    """The answer is a problem document of `status` whose detail holds `words`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"], body
    for word in words:
        assert word in body["detail"], (word, body)
    return body


async def audit_rows(db: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in await db.fetch(
        "SELECT key_name, role, action, pipeline, workflow_id, run_id, request, status,"
        " outcome, detail FROM pipeline.api_audit ORDER BY id")]


@dataclass
class ApiServer:
    url: str
    settings: Settings

    def client(self, key: str | None = None, **options: Any) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30, **options)


@contextlib.asynccontextmanager
async def api_server(settings: Settings, **web: Any) -> AsyncIterator[ApiServer]:
    web_settings = WebSettings(**{"api_keys": KEYS, "api_progress_poll_seconds": 0.2, **web,
                                  "_env_file": None})
    configured = settings.with_pipeline(web_settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        create_app(configured), host="127.0.0.1", port=port, log_config=None,
        access_log=False, lifespan="on", timeout_graceful_shutdown=2))
    # The test owns the process's signals; the server only stops when told.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    for _ in range(300):
        if server.started or task.done():
            break
        await asyncio.sleep(0.05)
    if not server.started:
        task.result() if task.done() else task.cancel()
        raise RuntimeError("the API server did not start")
    try:
        yield ApiServer(f"http://127.0.0.1:{port}", configured)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
