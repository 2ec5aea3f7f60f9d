"""Socket DSNs against a real Postgres that has no TCP listener at all, so any test that passes
went through the unix socket."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from devstack.postgres import SUPERUSER, EmbeddedPostgres
from devstack.processes import free_port, port_is_free
from pipeworks.db import connect, migrate, unreachable
from pipeworks.dsn import check_postgres_dsn, describe_location
from pipeworks.settings import load_settings


@pytest.fixture(scope="module")
def socket_postgres() -> Iterator[EmbeddedPostgres]:
    # Short directories under /tmp: a socket path must fit in 108 bytes, and pytest's tmp_path
    # can be long. One server for the whole module keeps it fast.
    root = Path(tempfile.mkdtemp(prefix="pw-dsn-"))
    server = EmbeddedPostgres(root / "data", port=free_port(), ephemeral=True,
                              tcp=False, socket_dir=root / "sock")
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def socket_dsn(socket_postgres: EmbeddedPostgres) -> str:
    return (f"postgresql://{SUPERUSER}@/postgres"
            f"?host={socket_postgres.socket_dir}&port={socket_postgres.port}")


@pytest.fixture(autouse=True)
def _no_libpq_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PG"):
            monkeypatch.delenv(name)


def test_server_listens_on_its_socket_only(socket_postgres: EmbeddedPostgres) -> None:
    sock = socket_postgres.socket_dir / f".s.PGSQL.{socket_postgres.port}"
    assert sock.is_socket()
    assert port_is_free("127.0.0.1", socket_postgres.port)
    assert port_is_free("::1", socket_postgres.port)
    assert socket_postgres.dsn == (f"postgresql://{SUPERUSER}@/pipeworks"
                                   f"?host={socket_postgres.socket_dir}"
                                   f"&port={socket_postgres.port}")


def test_check_and_describe_a_socket_dsn(socket_postgres: EmbeddedPostgres,
                                         socket_dsn: str) -> None:
    assert check_postgres_dsn(socket_dsn) == socket_dsn
    assert check_postgres_dsn(socket_postgres.dsn) == socket_postgres.dsn
    where = str(socket_postgres.socket_dir / f".s.PGSQL.{socket_postgres.port}")
    assert describe_location(socket_dsn) == where
    assert unreachable(socket_dsn, OSError("boom")).startswith(f"cannot use Postgres at {where} ")


async def test_connect_and_migrate_over_the_socket(socket_postgres: EmbeddedPostgres,
                                                   socket_dsn: str) -> None:
    conn = await connect(socket_dsn)
    try:
        # No server address: the session is on a unix socket, and TCP is off server-side.
        assert await conn.fetchval("SELECT inet_server_addr()") is None
        assert await conn.fetchval("SHOW listen_addresses") == ""
        await migrate(conn)
        assert await conn.fetchval("SELECT count(*) FROM pipeline.schema_migrations") > 0
        assert await migrate(conn) == [], "a second run finds nothing to do"
    finally:
        await conn.close()
    # The database the fixture created (through psql over the socket) is reachable too.
    conn = await connect(socket_postgres.dsn)
    try:
        assert await conn.fetchval("SELECT current_database()") == "pipeworks"
    finally:
        await conn.close()


async def test_the_same_server_is_not_reachable_over_tcp(
        socket_postgres: EmbeddedPostgres) -> None:
    with pytest.raises(OSError):
        await asyncpg.connect(f"postgresql://{SUPERUSER}@127.0.0.1:{socket_postgres.port}/postgres",
                              timeout=5)


def test_settings_accept_a_socket_dsn(socket_dsn: str) -> None:
    settings = load_settings(database_url=socket_dsn, _env_file=None)
    assert settings.resolved_database_url() == socket_dsn
