"""What the pipeline benchmarks (F1, Bitcoin) share: a stack of an embedded Postgres, a
Temporal dev server and one pipeworks worker process serving one pipeline, sampled for
CPU and RSS; the last-resort clean-up; and running a benchmark to its report.

A benchmark subclasses `BenchStack` for its upstream (`start_upstream`,
`stop_upstream`, `kill_upstream`) and the worker's settings (`worker_env`). Everything a
stack starts is stopped by `close` (or, when the event loop is gone, `close_now`), also
on failure, Ctrl-C or SIGTERM (`run_and_report`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import psutil
from rich.table import Table
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from benchmarks.common import stop_process
from benchmarks.run import (
    ROOT,
    Sampler,
    console,
    start_postgres_and_temporal,
    wait_for_pollers,
)
from devstack.postgres import EmbeddedPostgres
from devstack.processes import free_port
from pipeworks.db import connect

WORKER_STOP_TIMEOUT_S = 20.0


class BenchStack:
    """Postgres, Temporal and the worker process; `close` stops them (and the upstream)."""

    def __init__(self, *, name: str, pipelines: str, processes: int = 1,
                 unsandboxed: bool = False, keep_dir: bool = False) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"pipeworks-bench-{name}-"))
        self.task_queue = f"bench-{name}-{uuid.uuid4().hex[:8]}"
        self.pipelines = pipelines
        self.processes = processes
        self.unsandboxed = unsandboxed
        self.keep_dir = keep_dir
        self.postgres = EmbeddedPostgres(self.dir / "pg" / "data", port=free_port(),
                                         ephemeral=False)
        self.env: WorkflowEnvironment | None = None
        self.worker: asyncio.subprocess.Process | None = None
        self.worker_log = self.dir / "worker.log"
        self.sampler = Sampler()
        self.temporal_pid: int | None = None
        self.closed = False

    # -- for subclasses ---------------------------------------------------------------

    async def start_upstream(self) -> None:
        """Starts the benchmark's upstream (after Postgres and Temporal)."""

    async def stop_upstream(self) -> None:
        """Stops it (in `close`)."""

    def kill_upstream(self) -> None:
        """Stops it without an event loop (in `close_now`)."""

    def worker_env(self) -> dict[str, str]:
        """The worker's pipeline settings (`PIPEWORKS_*`)."""
        return {}

    # -- the stack --------------------------------------------------------------------

    @property
    def client(self) -> Client:
        assert self.env is not None
        return self.env.client

    @property
    def dsn(self) -> str:
        return self.postgres.dsn

    async def start(self) -> None:
        console.print(f"[dim]stack in {self.dir}[/]")
        self.env, self.temporal_pid = await start_postgres_and_temporal(self.postgres,
                                                                        self.sampler)
        await self.start_upstream()

    async def start_worker(self) -> None:
        env = {**os.environ,
               "PIPEWORKS_DATABASE_URL": self.dsn,
               "PIPEWORKS_TEMPORAL_ADDRESS": self.client.service_client.config.target_host,
               "PIPEWORKS_TASK_QUEUE": self.task_queue,
               "PIPEWORKS_HOME": str(self.dir / ".pipeworks"),
               "PIPEWORKS_LOG_FORMAT": "json",
               "PIPEWORKS_PIPELINES": self.pipelines,
               # Off: a dev stack's worker may hold the default ports; nothing reads them.
               "PIPEWORKS_METRICS_ADDRESS": "", "PIPEWORKS_HEALTH_ADDRESS": "",
               **self.worker_env()}
        command = ["-m", "starters.cli", "worker"]
        if self.processes > 1:
            command += ["--processes", str(self.processes)]
        if self.unsandboxed:
            command = ["-m", "benchmarks.bench_worker", "--unsandboxed"]
        self.worker = await asyncio.create_subprocess_exec(
            sys.executable, *command, env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
            stdout=self.worker_log.open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True)
        await wait_for_pollers(self.client, self.task_queue, self.worker, self.processes)
        self.sampler.watch("worker", self.worker.pid, descendants=self.processes > 1,
                           largest=True)

    def worker_processes(self) -> list[psutil.Process]:
        """The worker's process and, with --processes, its children."""
        assert self.worker is not None
        root = psutil.Process(self.worker.pid)
        return [root, *root.children(recursive=True)]

    async def stop_worker(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            await stop_process(worker, WORKER_STOP_TIMEOUT_S)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.stop_worker()
        self.sampler.stop()
        if self.env is not None:
            with contextlib.suppress(Exception):
                await self.env.shutdown()
        with contextlib.suppress(Exception):
            await self.stop_upstream()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.postgres.stop)
        self._remove_dir()
        self.closed = True

    def close_now(self) -> None:
        """Last resort when the event loop is gone (a second Ctrl-C): kill what is left."""
        if self.closed:
            return
        self.sampler.stop()
        for pid in (self.worker.pid if self.worker else None, self.temporal_pid):
            if pid is not None:
                with contextlib.suppress(psutil.Error):
                    psutil.Process(pid).kill()
        with contextlib.suppress(Exception):
            self.kill_upstream()
        with contextlib.suppress(Exception):
            self.postgres.stop()
        self._remove_dir()
        self.closed = True

    def _remove_dir(self) -> None:
        if self.keep_dir:
            console.print(f"[dim]kept {self.dir} (logs, Postgres data); servers are stopped[/]")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


ACTIVE: list[BenchStack] = []  # for the last-resort clean-up in run_and_report()
S = TypeVar("S", bound=BenchStack)


@contextlib.asynccontextmanager
async def running(stack: S) -> AsyncIterator[S]:
    """Starts `stack`, and stops everything it started when the block ends, however."""
    ACTIVE.append(stack)
    try:
        await stack.start()
        yield stack
    finally:
        # Shielded: a Ctrl-C during the run must not skip stopping the servers.
        await asyncio.shield(stack.close())


@contextlib.asynccontextmanager
async def connection(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


def _terminate(signum: int, frame: Any) -> None:
    # asyncio.run turns SIGINT into cancelling the benchmark, whose clean-up then runs.
    os.kill(os.getpid(), signal.SIGINT)


def run_and_report(out: Path, benchmark: Coroutine[Any, Any, dict[str, Any]],
                   render: Callable[[dict[str, Any]], None], *,
                   stacks: Sequence[Any] = ACTIVE) -> int:
    """Runs a benchmark to its report: printed, and written as JSON to `out`. Ctrl-C and
    SIGTERM stop it cleanly, with every process it started (`stacks`: what it keeps
    its running stacks in, each with a `close_now`)."""
    signal.signal(signal.SIGTERM, _terminate)
    # A shell without job control starts background jobs with SIGINT ignored; this
    # command always wants Ctrl-C (and SIGTERM) to stop it cleanly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.perf_counter()
    try:
        report = asyncio.run(benchmark)
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.print("[red]interrupted; stopped everything it had started[/]")
        return 130
    finally:
        for stack in stacks:
            stack.close_now()
    report["benchmark_wall_s"] = round(time.perf_counter() - started, 1)
    render(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    console.print(f"wrote {out} (whole benchmark {report['benchmark_wall_s']} s)")
    return 0


def print_cpu_by_category(pipeworks: dict[str, Any]) -> None:
    """The worker's CPU by category, when the run was sampled with py-spy."""
    if "worker_cpu_by_category_s" not in pipeworks:
        return
    table = Table(title="worker CPU s by category (py-spy)", title_justify="left")
    table.add_column("category")
    table.add_column("CPU s", justify="right")
    for name, seconds in pipeworks["worker_cpu_by_category_s"].items():
        table.add_row(name, f"{seconds:.2f}")
    console.print(table)


def print_targets(targets: Sequence[dict[str, Any]]) -> None:
    table = Table(title="targets", title_justify="left")
    for column in ("target", "measured", "met"):
        table.add_column(column)
    for target in targets:
        table.add_row(target["target"], target["measured"],
                      "[green]yes[/]" if target["met"] else "[red]no[/]")
    console.print(table)
