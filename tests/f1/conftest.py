"""The F1 pipeline's fixtures: the demo upstream over HTTP (tests/f1/conftest_upstream.py),
settings pointing at it, and a worker serving the F1 pipeline only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.f1.settings import F1Settings
from devstack.f1 import F1UpstreamServer
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.f1.conftest_upstream import (
    f1_truth_race,
    f1_upstream,
    f1_upstream_server,
)
from tests.worker import running_worker

__all__ = ["f1_truth_race", "f1_upstream", "f1_upstream_server"]  # fixtures of every test


def f1_settings_for(kernel: Settings, url: str, **values: object) -> Settings:
    """This worker serves the F1 pipeline only. The upstream's rate limit is the demo
    server's business here (a test of the limit sets it); a 429 without Retry-After
    waits 1 s, not the contract's 60 s."""
    options: dict[str, object] = {"f1_api_url": url, "f1_rate_limit": 500.0,
                                  "f1_retry_after_seconds": 1.0, **values}
    return kernel.model_copy(update={"pipelines": "f1"}).with_pipeline(
        F1Settings(**options, _env_file=None))  # type: ignore[arg-type]


@pytest.fixture
def f1_settings(kernel_settings: Settings, f1_upstream: F1UpstreamServer) -> Settings:
    return f1_settings_for(kernel_settings, f1_upstream.url)


@pytest_asyncio.fixture(loop_scope="session")
async def f1_worker(f1_settings: Settings, temporal_env: WorkflowEnvironment, db: Connection
                    ) -> AsyncIterator[Worker]:
    async with running_worker(f1_settings, temporal_env.client) as running:
        yield running
