"""The sports pipeline's fixtures: the demo upstream over HTTP (started once per session)
and settings pointing at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.sports.settings import SportsSettings
from devstack.sports.dataset import Dataset
from devstack.sports.server import UpstreamServer
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.worker import running_worker

TEST_DATASET = {"seed": 11, "associations": 2, "clubs_per_association": 6,
                "competitions_per_association": 3, "teams_per_competition": 6}


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[UpstreamServer]:
    server = UpstreamServer(Dataset.generate(**TEST_DATASET)).start()
    yield server
    server.stop()


@pytest.fixture
def upstream(upstream_server: UpstreamServer) -> Iterator[UpstreamServer]:
    """The session's upstream with its data and faults as generated."""
    upstream_server.dataset = Dataset.generate(**TEST_DATASET)
    upstream_server.faults.reset()
    upstream_server.token = None
    yield upstream_server
    upstream_server.faults.reset()


def sports_settings(**values: object) -> SportsSettings:
    return SportsSettings(**values, _env_file=None)  # type: ignore[arg-type]


@pytest.fixture
def settings(kernel_settings: Settings, upstream: UpstreamServer) -> Settings:
    # This worker serves the sports pipeline only: no other pipeline's upstream needed.
    return kernel_settings.model_copy(update={"pipelines": "sports_sync"}).with_pipeline(
        sports_settings(sports_api_url=upstream.url))


@pytest_asyncio.fixture(loop_scope="session")
async def worker(settings: Settings, temporal_env: WorkflowEnvironment, db: Connection
                 ) -> AsyncIterator[Worker]:
    async with running_worker(settings, temporal_env.client) as running:
        yield running
