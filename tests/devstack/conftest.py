"""Fixtures that guarantee every server or process a test starts is stopped again, even when
the test fails half-way."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from devstack.postgres import EmbeddedPostgres
from devstack.processes import ManagedProcess, free_port
from devstack.temporal import TemporalDevServer

ProcessFactory = Callable[..., ManagedProcess]


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def make_process(state_dir: Path) -> Iterator[ProcessFactory]:
    made: list[ManagedProcess] = []

    def factory(argv: Sequence[str], name: str = "sleeper", **kwargs: object) -> ManagedProcess:
        proc = ManagedProcess(name, state_dir, argv, **kwargs)  # type: ignore[arg-type]
        made.append(proc)
        return proc

    yield factory
    for proc in made:
        proc.stop(timeout=2)


@pytest.fixture
def make_postgres(tmp_path: Path) -> Iterator[Callable[..., EmbeddedPostgres]]:
    made: list[EmbeddedPostgres] = []

    def factory(name: str = "pg", **kwargs: object) -> EmbeddedPostgres:
        pg = EmbeddedPostgres(tmp_path / name / "data", free_port(), **kwargs)  # type: ignore[arg-type]
        made.append(pg)
        return pg

    yield factory
    for pg in made:
        pg.stop()


@pytest.fixture
def make_temporal(tmp_path: Path) -> Iterator[Callable[..., TemporalDevServer]]:
    made: list[TemporalDevServer] = []

    def factory(**kwargs: object) -> TemporalDevServer:
        kwargs.setdefault("port", free_port())
        kwargs.setdefault("ui_port", free_port())
        server = TemporalDevServer(tmp_path / "temporal", **kwargs)  # type: ignore[arg-type]
        made.append(server)
        return server

    yield factory
    for server in made:
        server.stop()


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port held by a listener that is not ours, as a foreign server would hold it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]
