"""`pipeworks serve`: the app on uvicorn, with graceful shutdown (open event streams
end, requests in flight finish)."""

from __future__ import annotations

import uvicorn

from pipeworks.settings import Settings
from starters.web.app import create_app

SHUTDOWN_SECONDS = 5


def serve(settings: Settings, host: str, port: int) -> None:
    config = uvicorn.Config(
        create_app(settings), host=host, port=port, log_config=None,
        # Our own access log (middleware.py): uvicorn's would print /login?key=<key>.
        access_log=False, proxy_headers=False, timeout_graceful_shutdown=SHUTDOWN_SECONDS,
        lifespan="on")
    uvicorn.Server(config).run()
