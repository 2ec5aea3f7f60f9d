"""The example pipeline registers itself for its tests, with its upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from pipeworks import registry
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.example.pipeline import EXAMPLE, ExampleSettings
from tests.example.upstream import ReadingsUpstream
from tests.worker import running_worker


@pytest.fixture(scope="module")
def example_pipeline() -> Iterator[registry.Pipeline]:
    with registry.registered(EXAMPLE) as pipeline:
        yield pipeline


@pytest.fixture
def readings_upstream() -> Iterator[ReadingsUpstream]:
    server = ReadingsUpstream()
    yield server
    server.gate.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def example_settings(example_pipeline: registry.Pipeline, kernel_settings: Settings,
                     readings_upstream: ReadingsUpstream) -> Settings:
    # This worker serves the example pipeline only: no other pipeline's upstream needed.
    return kernel_settings.model_copy(update={"pipelines": EXAMPLE.name}).with_pipeline(
        ExampleSettings(example_api_url=readings_upstream.url,
                        _env_file=None))  # type: ignore[call-arg]


@pytest_asyncio.fixture(loop_scope="session")
async def example_db(example_pipeline: registry.Pipeline, db: Connection) -> Connection:
    return db


@pytest_asyncio.fixture(loop_scope="session")
async def example_worker(example_settings: Settings, temporal_env: WorkflowEnvironment,
                         example_db: Connection) -> AsyncIterator[Settings]:
    async with running_worker(example_settings, temporal_env.client):
        yield example_settings
