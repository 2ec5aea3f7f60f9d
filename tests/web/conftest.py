"""The server of `pipeworks serve` over the example pipeline: its worker, Temporal and
Postgres are real, and so is the HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from pipeworks.settings import Settings
from tests.example.conftest import (  # noqa: F401 - fixtures used by these tests
    example_db,
    example_pipeline,
    example_settings,
    example_worker,
    readings_upstream,
)
from tests.web_server import ApiServer, api_server


@pytest_asyncio.fixture(loop_scope="session")
async def api(example_worker: Settings) -> AsyncIterator[ApiServer]:  # noqa: F811
    async with api_server(example_worker) as server:
        yield server
