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
from pipeworks.settings import Settings
from pipeworks.web_settings import WebSettings
from starters.web.app import create_app

VIEWER_KEY = "viewer-key-0123456789abcdef"
OPERATOR_KEY = "operator-key-0123456789abcdef"
KEYS = f"ada:viewer:{VIEWER_KEY},ops:operator:{OPERATOR_KEY}"


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
