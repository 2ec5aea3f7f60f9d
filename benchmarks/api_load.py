"""The API load benchmark (issue 13): 50 clients on the server-sent events of live runs
plus 20 requests/s on the list routes for 60 s, against `pipeworks serve` on loopback.

    python -m benchmarks.api_load [--seconds 60] [--sse-clients 50] [--rate 20]
        [--settle-seconds 5] [--latency-ms N] [--page-size 2] [--seed-runs 2000]
        [--seed-findings 20000] [--no-f1] [--key-rate 100] [--key-burst 200]
        [--keep-dir] [--json FILE]

Starts `pipeworks dev up` (Postgres, Temporal, every pipeline's demo upstream, a worker
and the API server) on free ports under a temporary PIPEWORKS_HOME, with API keys of its
own. Seeds finished runs into `pipeline.runs` and findings into `btc.discrepancies`, so
that the lists page through real indexes. Then:

1. syncs club C1-1 to completion (a real finished run in the lists);
2. slows the sports demo upstream (`PATCH /_admin/faults {"latency_ms": ...}`) and
   starts, through the API, the sync of associations A1, A2 and A3 (page size 2, one
   competition at a time) and the F1 2024 season (rate-limited by its own settings):
   runs that stay running, with progress that changes, for the whole window; waits
   `--settle-seconds` past their first seconds;
3. for `--seconds`: `--sse-clients` clients on `GET /api/v1/runs/{id}/events`, spread
   over those runs (a client whose run ends gets `end` and moves to a run still
   running), and an open-loop schedule of `--rate` requests/s (fixed arrival times,
   each request its own task) over the list routes: runs (with and without filters,
   following cursors), pipelines, Bitcoin findings (with and without filters, following
   cursors);
4. reports request counts, errors, list latency percentiles (per route too, and the
   server's own from its access log), the SSE clients' time to first event and events,
   the server's CPU and RSS, every stack process's CPU; checks the runs still run.

Exit status 1 when a target fails: no error (non-2xx, transport error, SSE stream
broken before `end`) and p99 of the list requests < 200 ms. `pipeworks dev down` stops
everything it started, also on failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from rich.table import Table

from benchmarks.run import (
    RESULTS,
    _f,
    console,
    git_state,
    machine,
    percentile,
    versions,
)
from benchmarks.stack import print_targets, run_and_report
from devstack.processes import free_port

API = "/api/v1"
TARGET_P99_MS = 200.0
REQUEST_TIMEOUT_S = 10.0
RSS_EVERY_S = 0.5
SSE_READ_TIMEOUT_S = 40.0        # the server pings every 15 s
RECONNECT_S = 1.0                # an EventSource's default retry is 3 s; ours is quicker
DEV_UP_TIMEOUT_S = 240.0
DEV_DOWN_TIMEOUT_S = 120.0
RUN_WAIT_S = 120.0
# The sports demo preset: 4 competitions per association of about 90 games; at
# competition concurrency 1 a run makes about 4 * 90 / page_size requests one after the
# other. The latency is chosen so that a run outlasts the window by RUN_MARGIN_S.
DEMO_COMPETITIONS = 4
DEMO_GAMES_PER_COMPETITION = 90
RUN_MARGIN_S = 40.0
SPORTS_ORGS = ("A1", "A2", "A3")
WARMUP_CLUB = "C1-1"                # of A1: synced to completion before A1 starts
F1_SEASON = 2024
FINAL = ("completed", "completed_with_errors", "failed", "cancelled", "rolled_back")
KEY_NAMES = {"list": "load-list", "sse": "load-sse", "operator": "load-operator"}
ERROR_SAMPLES = 10
ACTIVE: list[LoadStack] = []  # for the last-resort clean-up in run_and_report()


@dataclass(frozen=True)
class Config:
    seconds: float
    sse_clients: int
    rate: float
    settle_s: float
    latency_ms: int
    page_size: int
    seed_runs: int
    seed_findings: int
    f1: bool
    key_rate: float
    key_burst: int
    keep_dir: bool
    out: Path


# -- the stack: `pipeworks dev up` in a temporary home ---------------------------------


class LoadStack:
    """`pipeworks dev up` / `dev down` as subprocesses on free ports, state in a temp dir.
    `down` (or `close_now`, without an event loop) stops everything `up` started and
    kills whatever still names the home afterwards."""

    def __init__(self, config: Config) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pipeworks-bench-api-"))
        self.home = self.dir / "home"
        self.keep_dir = config.keep_dir
        self.keys = {role: secrets.token_urlsafe(24) for role in KEY_NAMES}
        self.api_port = free_port()
        self.upstream_port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PIPEWORKS_")}
        self.env.update({
            "PIPEWORKS_HOME": str(self.home),
            "PIPEWORKS_POSTGRES_PORT": str(free_port()),
            "PIPEWORKS_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
            "PIPEWORKS_TEMPORAL_UI_PORT": str(free_port()),
            "PIPEWORKS_UPSTREAM_PORT": str(self.upstream_port),
            "PIPEWORKS_F1_UPSTREAM_PORT": str(free_port()),
            "PIPEWORKS_BTC_NODE_PORT": str(free_port()),
            "PIPEWORKS_API_PORT": str(self.api_port),
            "PIPEWORKS_METRICS_ADDRESS": f"127.0.0.1:{free_port()}",
            "PIPEWORKS_HEALTH_ADDRESS": f"127.0.0.1:{free_port()}",
            "PIPEWORKS_GRACEFUL_SHUTDOWN_SECONDS": "5",
            "PIPEWORKS_LOG_FORMAT": "json",  # the API's access log is read afterwards
            # `dev up` appends its local operator key to these.
            "PIPEWORKS_API_KEYS": ",".join(f"{KEY_NAMES[role]}:"
                                           f"{'operator' if role == 'operator' else 'viewer'}"
                                           f":{key}" for role, key in self.keys.items()),
            "PIPEWORKS_API_RATE_LIMIT_PER_SECOND": f"{config.key_rate:g}",
            "PIPEWORKS_API_RATE_LIMIT_BURST": str(config.key_burst),
            "COLUMNS": "200",
        })
        self.started = False
        self.closed = False
        self.up_s: float | None = None
        self.down_s: float | None = None
        self.down_output = ""
        self.left_behind: list[str] = []

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def upstream_url(self) -> str:
        return f"http://127.0.0.1:{self.upstream_port}"

    @property
    def api_log(self) -> Path:
        return self.home / "logs" / "api.log"

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    async def _cli(self, *args: str, timeout_s: float) -> tuple[int, str]:
        """`pipeworks <args>` beside the home (away from the repository's .env and
        .pipeworks), in a session of its own: a Ctrl-C reaches this process only, which
        then stops the command and the stack in order."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "starters.cli", *args, env=self.env, cwd=self.dir,
            stdin=subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except BaseException:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                raise
            raise
        return proc.returncode or 0, out.decode(errors="replace")

    async def up(self) -> None:
        console.print(f"[dim]pipeworks dev up in {self.home}[/]")
        started = time.perf_counter()
        self.started = True
        code, out = await self._cli("dev", "up", timeout_s=DEV_UP_TIMEOUT_S)
        self.up_s = round(time.perf_counter() - started, 1)
        if code != 0:
            raise RuntimeError(f"pipeworks dev up failed ({code}):\n{out[-3000:]}")

    async def down(self) -> None:
        if self.closed:
            return
        if self.started:
            started = time.perf_counter()
            with contextlib.suppress(Exception):
                code, out = await self._cli("dev", "down", timeout_s=DEV_DOWN_TIMEOUT_S)
                self.down_output = out if code else ""
            self.down_s = round(time.perf_counter() - started, 1)
            self.left_behind = await asyncio.to_thread(kill_left_behind, self.home)
        self._finish()

    def close_now(self) -> None:
        """Last resort when the event loop is gone (a second Ctrl-C)."""
        if self.closed:
            return
        if self.started:
            with contextlib.suppress(Exception):
                subprocess.run([sys.executable, "-m", "starters.cli", "dev", "down"],
                               env=self.env, cwd=self.dir, capture_output=True,
                               timeout=DEV_DOWN_TIMEOUT_S, check=False)
            self.left_behind = kill_left_behind(self.home)
        self._finish()

    def _finish(self) -> None:
        self.closed = True
        if self.left_behind:
            console.print(f"[red]killed processes dev down left: {self.left_behind}[/]")
        if self.keep_dir:
            console.print(f"[dim]kept {self.dir} (logs, Postgres data); servers are "
                          "stopped[/]")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def database_url(self) -> str:
        state = json.loads((self.home / "stack.json").read_text())
        return str(state["database_url"])

    def roots(self) -> dict[str, int]:
        """The stack's processes by name: every pid file `dev up` wrote, and Postgres."""
        found: dict[str, int] = {}
        for pid_file in sorted(self.home.glob("**/run/*.pid")):
            with contextlib.suppress(OSError, ValueError, KeyError):
                found[pid_file.stem] = int(json.loads(pid_file.read_text())["pid"])
        postmaster = self.home / "postgres" / "data" / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            found["postgres"] = int(postmaster.read_text().splitlines()[0])
        return found


def stack_processes(home: Path) -> list[psutil.Process]:
    """Every process of this stack: its command line names the home (Postgres, Temporal)
    or its environment has it as PIPEWORKS_HOME (the upstreams, the worker, the server;
    found even when their pid files are gone)."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        if process.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error):
            if (str(home) in " ".join(process.info["cmdline"] or [])
                    or process.environ().get("PIPEWORKS_HOME") == str(home)):
                found.append(process)
    return found


def kill_left_behind(home: Path, grace_s: float = 5.0) -> list[str]:
    """Waits up to `grace_s` for the stack's processes to be gone after `dev down`, then
    kills (and names) what is left."""
    deadline = time.monotonic() + grace_s
    while True:
        left = []
        for process in stack_processes(home):
            with contextlib.suppress(psutil.Error):
                if process.status() != psutil.STATUS_ZOMBIE:
                    left.append(process)
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    named = []
    for process in left:
        with contextlib.suppress(psutil.Error):
            named.append(f"{process.pid} {process.name()}")
            process.kill()
    return named


# -- seeding ----------------------------------------------------------------------------

_SEED_RUNS = """
    INSERT INTO pipeline.runs (workflow_id, run_id, pipeline, params, status, started_at,
                               finished_at, stats)
    SELECT 'bench-seed-' || i, 'bench-seed-run-' || i,
           (ARRAY['sports_sync', 'f1', 'btc_reconcile'])[1 + i % 3],
           jsonb_build_object('seeded', true, 'n', i),
           CASE WHEN i % 50 = 0 THEN 'failed' WHEN i % 97 = 0 THEN 'cancelled'
                ELSE 'completed' END,
           now() - interval '1 hour' - i * interval '7 minutes',
           now() - interval '1 hour' - i * interval '7 minutes' + interval '40 seconds',
           jsonb_build_object('percent', 100, 'status', 'completed',
                              'message', i || ' inserted, 0 updated, 0 deleted, 0 unchanged',
                              'records', jsonb_build_object('fetched', i, 'staged', i))
    FROM generate_series(1, $1) AS i
"""
_SEED_FINDINGS = """
    INSERT INTO btc.discrepancies (height, "check", field, ours, theirs, category,
                                   severity, detail, first_run_id, last_run_id,
                                   first_seen_at, last_seen_at, resolved_at)
    SELECT i, 'seeded', 'value', 1000 + i, 1000 + i + i % 7,
           (ARRAY['underclaim', 'value_mismatch', 'count_mismatch', 'missing_block',
                  'unverifiable'])[1 + i % 5],
           (ARRAY['info', 'error', 'warning', 'error', 'warning'])[1 + i % 5],
           jsonb_build_object('seeded', true),
           'bench-seed-run-' || (1 + i % 10), 'bench-seed-run-' || (1 + i % 10),
           now() - interval '2 days' + i * interval '1 second',
           now() - interval '1 day' + i * interval '1 second',
           CASE WHEN i % 4 = 0 THEN now() - interval '1 hour' END
    FROM generate_series(1, $1) AS i
"""


async def seed(dsn: str, runs: int, findings: int) -> dict[str, Any]:
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        if runs:
            await conn.execute(_SEED_RUNS, runs)
        if findings:
            await conn.execute(_SEED_FINDINGS, findings)
        await conn.execute("ANALYZE pipeline.runs")
        await conn.execute("ANALYZE btc.discrepancies")
    finally:
        await conn.close()
    return {"runs": runs, "findings": findings, "s": round(time.perf_counter() - started, 2)}


# -- runs that stay running ---------------------------------------------------------------


async def run_document(api: httpx.AsyncClient, stack: LoadStack, workflow_id: str
                       ) -> dict[str, Any]:
    response = await api.get(f"{API}/runs/{workflow_id}", headers=stack.auth("operator"))
    if response.status_code != 200:
        return {"status": f"HTTP {response.status_code}"}
    document: dict[str, Any] = response.json()
    return document


async def wait_for(api: httpx.AsyncClient, stack: LoadStack, workflow_id: str,
                   final: bool) -> dict[str, Any]:
    """Until the run answers `running` (or has ended: `final`)."""
    deadline = time.monotonic() + RUN_WAIT_S
    document: dict[str, Any] = {}
    while time.monotonic() < deadline:
        document = await run_document(api, stack, workflow_id)
        status = document.get("status")
        if status in FINAL or (not final and status == "running"):
            return document
        await asyncio.sleep(0.5)
    raise RuntimeError(f"{workflow_id}: still {document.get('status')!r} after "
                       f"{RUN_WAIT_S:.0f} s")


async def start_run(api: httpx.AsyncClient, stack: LoadStack, pipeline: str,
                    body: dict[str, Any]) -> str:
    response = await api.post(f"{API}/pipelines/{pipeline}/runs", json=body,
                              headers=stack.auth("operator"))
    if response.status_code not in (200, 201):
        raise RuntimeError(f"starting {pipeline} {body}: {response.status_code} "
                           f"{response.text[:500]}")
    return str(response.json()["workflow_id"])


async def start_runs(api: httpx.AsyncClient, stack: LoadStack, config: Config
                     ) -> tuple[list[str], dict[str, Any]]:
    """A finished sports run, then the runs that stay running; their workflow ids."""
    warmup = await start_run(api, stack, "sports_sync",
                             {"org_kind": "club", "org_id": WARMUP_CLUB})
    finished = await wait_for(api, stack, warmup, final=True)
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as upstream:
        (await upstream.patch(f"{stack.upstream_url}/_admin/faults",
                              json={"latency_ms": config.latency_ms})).raise_for_status()
    live = [await start_run(api, stack, "sports_sync", {
        "org_kind": "association", "org_id": org, "page_size": config.page_size,
        "competition_concurrency": 1}) for org in SPORTS_ORGS]
    if config.f1:
        live.append(await start_run(api, stack, "f1", {"year": F1_SEASON}))
    for workflow_id in live:
        await wait_for(api, stack, workflow_id, final=False)
    return live, {"workflow_id": warmup, "status": finished.get("status")}


# -- the load -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str
    path: str
    params: dict[str, str | int] = field(default_factory=dict)
    chain: str | None = None  # pages on with the `next_cursor` of its last answer


def routes(config: Config) -> list[Route]:
    """The list routes, cycled in this order (each gets rate / len of the requests)."""
    lo, hi = config.seed_findings // 4, config.seed_findings // 2
    return [
        Route("runs", f"{API}/runs"),
        Route("runs, limit 20, next page", f"{API}/runs", {"limit": 20}, chain="runs"),
        Route("runs of sports_sync", f"{API}/runs", {"pipeline": "sports_sync"}),
        Route("runs running", f"{API}/runs", {"status": "running"}),
        Route("runs of f1 completed, limit 100", f"{API}/runs",
              {"pipeline": "f1", "status": "completed", "limit": 100}),
        Route("pipelines", f"{API}/pipelines"),
        Route("findings", f"{API}/btc/findings"),
        Route("findings, limit 50, next page", f"{API}/btc/findings", {"limit": 50},
              chain="findings"),
        Route("findings underclaim open in heights", f"{API}/btc/findings",
              {"category": "underclaim", "open": "true", "from_height": lo,
               "to_height": hi}),
        Route("findings of severity error, limit 20", f"{API}/btc/findings",
              {"severity": "error", "limit": 20}),
    ]


@dataclass
class ListStats:
    scheduled: int = 0
    sent: int = 0
    ok: int = 0
    latency_ms: list[float] = field(default_factory=list)
    lag_ms: list[float] = field(default_factory=list)
    timeline: list[tuple[float, float]] = field(default_factory=list)  # (due s, ms)
    by_route: dict[str, list[float]] = field(default_factory=dict)
    route_errors: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    cursors: dict[str, str | None] = field(default_factory=dict)

    def error(self, kind: str, sample: str) -> None:
        self.errors[kind] += 1
        if len(self.samples) < ERROR_SAMPLES:
            self.samples.append(sample[:500])


async def one_request(client: httpx.AsyncClient, stack: LoadStack, route: Route, due: float,
                      offset: float, stats: ListStats) -> None:
    params = dict(route.params)
    if route.chain is not None and (cursor := stats.cursors.get(route.chain)):
        params["cursor"] = cursor
    sent = time.perf_counter()
    stats.sent += 1
    stats.lag_ms.append((sent - due) * 1000)
    try:
        response = await client.get(route.path, params=params, headers=stack.auth("list"))
    except httpx.TimeoutException as err:
        stats.route_errors[route.name] += 1
        stats.error("timeout", f"{route.name}: {type(err).__name__} after "
                               f"{REQUEST_TIMEOUT_S:g} s")
        return
    except httpx.HTTPError as err:
        stats.route_errors[route.name] += 1
        stats.error(type(err).__name__, f"{route.name}: {type(err).__name__} {err}")
        return
    elapsed = (time.perf_counter() - sent) * 1000
    stats.latency_ms.append(elapsed)
    stats.timeline.append((offset, elapsed))
    stats.by_route.setdefault(route.name, []).append(elapsed)
    if not 200 <= response.status_code < 300:
        stats.route_errors[route.name] += 1
        stats.error(f"HTTP {response.status_code}",
                    f"{route.name} ({response.url.path}?{response.url.query.decode()}): "
                    f"{response.status_code} {response.text[:300]}")
        return
    stats.ok += 1
    if route.chain is not None:
        with contextlib.suppress(ValueError, AttributeError):
            stats.cursors[route.chain] = response.json().get("next_cursor")


async def list_load(client: httpx.AsyncClient, stack: LoadStack, config: Config,
                    start: float, stats: ListStats) -> None:
    """Open loop: request i is sent at start + i / rate, whatever the earlier ones do."""
    schedule = routes(config)
    pending: set[asyncio.Task[None]] = set()
    stats.scheduled = int(config.seconds * config.rate)
    for i in range(stats.scheduled):
        due = start + i / config.rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        task = asyncio.create_task(one_request(client, stack, schedule[i % len(schedule)],
                                               due, i / config.rate, stats))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending)  # each is bounded by the request timeout


@dataclass
class SseStats:
    connections: int = 0
    open_streams: int = 0
    first_event_ms: list[float] = field(default_factory=list)
    first_event_by_run: dict[str, list[float]] = field(default_factory=dict)
    events: Counter[str] = field(default_factory=Counter)
    per_run: Counter[str] = field(default_factory=Counter)
    delay_ms: list[float] = field(default_factory=list)
    ended: set[str] = field(default_factory=set)
    errors: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)

    def error(self, kind: str, sample: str) -> None:
        self.errors[kind] += 1
        if len(self.samples) < ERROR_SAMPLES:
            self.samples.append(sample[:500])


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """(event, data) of a text/event-stream; comments (pings) are skipped."""
    name = "message"
    data: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield name, "\n".join(data)
            name, data = "message", []
        elif not line.startswith(":"):
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)


def _updated_at(data: str) -> float | None:
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        stamp = json.loads(data).get("updated_at")
        if isinstance(stamp, str):
            return datetime.fromisoformat(stamp).timestamp()
    return None


async def sse_client(index: int, client: httpx.AsyncClient, stack: LoadStack,
                     runs: Sequence[str], stats: SseStats) -> None:
    """Follows one run's events until `end`, then another run still running; runs until
    cancelled (the window's end), or until no run is left."""
    while True:
        candidates = [r for r in runs if r not in stats.ended]
        if not candidates:
            return
        workflow_id = candidates[index % len(candidates)]
        stats.connections += 1
        started = time.perf_counter()
        try:
            async with client.stream("GET", f"{API}/runs/{workflow_id}/events",
                                     headers={**stack.auth("sse"),
                                              "Accept": "text/event-stream"}) as response:
                if response.status_code != 200:
                    body = (await response.aread()).decode(errors="replace")
                    stats.error(f"HTTP {response.status_code}",
                                f"{workflow_id}: {response.status_code} {body[:300]}")
                    await asyncio.sleep(RECONNECT_S)
                    continue
                stats.open_streams += 1
                ended = first = False
                try:
                    async for name, data in sse_events(response):
                        if not first:
                            first = True
                            waited = (time.perf_counter() - started) * 1000
                            stats.first_event_ms.append(waited)
                            stats.first_event_by_run.setdefault(workflow_id, []).append(waited)
                        elif name == "progress" and (stamp := _updated_at(data)) is not None:
                            stats.delay_ms.append((time.time() - stamp) * 1000)
                        stats.events[name] += 1
                        stats.per_run[workflow_id] += 1
                        if name == "end":
                            ended = True
                            stats.ended.add(workflow_id)
                            break
                finally:
                    stats.open_streams -= 1
        except httpx.HTTPError as err:
            stats.error(type(err).__name__, f"{workflow_id}: {type(err).__name__} {err}")
            await asyncio.sleep(RECONNECT_S)
            continue
        if not ended:
            stats.error("stream closed before end", f"{workflow_id}: the stream ended "
                        "without an `end` event")
            await asyncio.sleep(RECONNECT_S)


def tree_cpu(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) so far of each root process with its descendants, from
    one pass over the process table (a process that exits between two readings takes
    its CPU seconds with it)."""
    own: dict[int, float] = {}
    children: dict[int, list[int]] = {}
    for process in psutil.process_iter(["pid", "ppid", "cpu_times"]):
        times = process.info["cpu_times"]
        if times is not None:
            own[process.info["pid"]] = times.user + times.system
            children.setdefault(process.info["ppid"], []).append(process.info["pid"])
    totals = {}
    for name, root in roots.items():
        total, todo = 0.0, [root]
        while todo:
            pid = todo.pop()
            total += own.get(pid, 0.0)
            todo.extend(children.get(pid, []))
        totals[name] = total
    return totals


async def sample_rss(pid: int, every_s: float, series: list[tuple[float, float]]) -> None:
    """The server's RSS (MB) every `every_s`, until cancelled."""
    process = psutil.Process(pid)
    while True:
        with contextlib.suppress(psutil.Error):
            series.append((time.perf_counter(), process.memory_info().rss / 2**20))
        await asyncio.sleep(every_s)


async def load(stack: LoadStack, config: Config, runs: list[str]) -> dict[str, Any]:
    list_stats, sse_stats = ListStats(), SseStats()
    limits = httpx.Limits(max_connections=config.sse_clients + 10,
                          max_keepalive_connections=config.sse_clients + 10)
    timeout = httpx.Timeout(REQUEST_TIMEOUT_S, read=SSE_READ_TIMEOUT_S)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=REQUEST_TIMEOUT_S,
                                 limits=httpx.Limits(max_connections=100)) as lists, \
            httpx.AsyncClient(base_url=stack.api_url, timeout=timeout, limits=limits) as sse:
        roots = {**stack.roots(), "benchmark": os.getpid()}
        psutil.cpu_percent()  # starts the machine's CPU reading
        cpu_before = tree_cpu(roots)
        rss: list[tuple[float, float]] = []
        sampler = asyncio.create_task(sample_rss(roots["api"], RSS_EVERY_S, rss))
        wall_start = datetime.now(UTC)
        start = time.perf_counter()
        clients = [asyncio.create_task(sse_client(i, sse, stack, runs, sse_stats))
                   for i in range(config.sse_clients)]
        generator = asyncio.create_task(list_load(lists, stack, config, start, list_stats))
        try:
            await asyncio.sleep(max(0.0, start + config.seconds - time.perf_counter()))
            open_at_end = sse_stats.open_streams
            for client in clients:
                client.cancel()
            outcomes = await asyncio.gather(*clients, return_exceptions=True)
            await generator
        finally:
            for task in (*clients, generator, sampler):
                task.cancel()
        window_s = time.perf_counter() - start
        wall_end = datetime.now(UTC)
        machine_cpu = psutil.cpu_percent()
        cpu_after = tree_cpu(roots)
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            sse_stats.error("client crashed", f"{type(outcome).__name__}: {outcome}")
    cpu = {name: round(cpu_after.get(name, 0.0) - cpu_before.get(name, 0.0), 2)
           for name in cpu_after}
    return {
        "window_s": round(window_s, 2),
        "list": list_report(list_stats, window_s),
        "sse": sse_report(sse_stats, config, open_at_end),
        "server": server_report(rss, cpu.get("api"), window_s),
        "cpu_s_by_process": dict(sorted(cpu.items(), key=lambda kv: -kv[1])),
        "machine_cpu_percent": machine_cpu,
        "server_log": access_log(stack.api_log, wall_start, wall_end),
    }


# -- the report ---------------------------------------------------------------------------


def spread(values: Sequence[float]) -> dict[str, float | int | None]:
    def r(value: float | None) -> float | None:
        return None if value is None else round(value, 1)
    return {"n": len(values), "p50": r(percentile(values, 50)), "p95": r(percentile(values, 95)),
            "p99": r(percentile(values, 99)), "max": r(max(values) if values else None),
            "mean": r(statistics.fmean(values) if values else None)}


def list_report(stats: ListStats, window_s: float) -> dict[str, Any]:
    return {
        "scheduled": stats.scheduled, "sent": stats.sent, "ok": stats.ok,
        "achieved_per_s": round(stats.sent / window_s, 2) if window_s else None,
        "error_count": sum(stats.errors.values()), "errors": dict(stats.errors),
        "error_samples": stats.samples,
        "latency_ms": spread(stats.latency_ms),
        "schedule_lag_ms": spread(stats.lag_ms),
        # Per second of the window: [second, requests answered, p50 ms, max ms].
        "per_second": per_second(stats.timeline),
        "by_route": {name: {**spread(values), "errors": stats.route_errors.get(name, 0)}
                     for name, values in stats.by_route.items()},
    }


def per_second(timeline: Sequence[tuple[float, float]]) -> list[list[float]]:
    seconds: dict[int, list[float]] = {}
    for offset, ms in timeline:
        seconds.setdefault(int(offset), []).append(ms)
    return [[second, len(v), round(statistics.median(v), 1), round(max(v), 1)]
            for second, v in sorted(seconds.items())]


def sse_report(stats: SseStats, config: Config, open_at_end: int) -> dict[str, Any]:
    return {
        "clients": config.sse_clients, "connections": stats.connections,
        "open_at_end": open_at_end,
        "first_event_ms": spread(stats.first_event_ms),
        "first_event_ms_by_run": {run: spread(v) for run, v in stats.first_event_by_run.items()},
        "events": dict(stats.events), "events_total": sum(stats.events.values()),
        "events_by_run": dict(stats.per_run),
        "runs_ended": sorted(stats.ended),
        # receive time minus the document's updated_at, for events after the first of a
        # stream: how late a change arrives (the server polls every 0.5 s).
        "progress_delay_ms": spread(stats.delay_ms),
        "error_count": sum(stats.errors.values()), "errors": dict(stats.errors),
        "error_samples": stats.samples,
    }


def server_report(series: Sequence[tuple[float, float]], cpu_s: float | None, window_s: float
                  ) -> dict[str, Any]:
    return {
        "cpu_s": cpu_s,
        "cpu_percent_of_one_core": round(100 * cpu_s / window_s, 1) if cpu_s else None,
        "rss_mb_start": round(series[0][1], 1) if series else None,
        "rss_mb_end": round(series[-1][1], 1) if series else None,
        "rss_mb_peak": round(max(v for _, v in series), 1) if series else None,
        # One reading every 10 s: a leak shows as a steady climb.
        "rss_mb_every_10s": [round(v, 1) for _, v in series[::int(10 / RSS_EVERY_S)]],
    }


def access_log(path: Path, since: datetime, until: datetime) -> dict[str, Any]:
    """The server's own timing of each request in the window (its access log, JSON lines:
    `ms` from the request's arrival to the end of its answer), by path. Event streams are
    left out: their `ms` is how long they stayed open."""
    by_path: dict[str, list[float]] = {}
    statuses: Counter[str] = Counter()
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            with contextlib.suppress(ValueError, KeyError, TypeError):
                entry = json.loads(line)
                if entry.get("event") != "request":
                    continue
                at = datetime.fromisoformat(entry["timestamp"])
                if not since <= at <= until or entry["path"].endswith("/events"):
                    continue
                by_path.setdefault(entry["path"], []).append(float(entry["ms"]))
                statuses[str(entry["status"])] += 1
    return {"by_path": {p: spread(v) for p, v in sorted(by_path.items())},
            "statuses": dict(statuses)}


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    lists, sse = report["list"], report["sse"]
    p99 = lists["latency_ms"]["p99"]
    return [
        {"target": "no error: list requests (non-2xx, transport, timeout)",
         "measured": f"{lists['error_count']} of {lists['sent']}",
         "met": lists["error_count"] == 0 and lists["sent"] == lists["scheduled"]},
        {"target": "no error: SSE streams (non-2xx, transport, closed before `end`)",
         "measured": f"{sse['error_count']} in {sse['connections']} connections",
         "met": sse["error_count"] == 0},
        {"target": f"list requests p99 < {TARGET_P99_MS:g} ms",
         "measured": f"{_f(p99, 1)} ms", "met": p99 is not None and p99 < TARGET_P99_MS},
    ]


def _ms(d: dict[str, Any], *keys: str) -> str:
    return " / ".join(_f(d.get(k), 1) for k in keys)


def render(report: dict[str, Any]) -> None:
    c, lists, sse, server = report["config"], report["list"], report["sse"], report["server"]
    table = Table(title=f"API load: {c['sse_clients']} SSE clients + {c['rate']:g} list "
                        f"requests/s for {c['seconds']:g} s (window {report['window_s']} s)",
                  title_justify="left")
    table.add_column("what")
    table.add_column("measured", justify="right")
    l_lat, lag = lists["latency_ms"], lists["schedule_lag_ms"]
    rows = [
        ("list requests: scheduled / sent / 2xx",
         f"{lists['scheduled']} / {lists['sent']} / {lists['ok']}"),
        ("list errors", f"{lists['error_count']} {lists['errors'] or ''}".strip()),
        ("list latency p50 / p95 / p99 / max (ms)", _ms(l_lat, "p50", "p95", "p99", "max")),
        (f"seconds with a list request over {TARGET_P99_MS:g} ms",
         ", ".join(f"{int(sec)} ({ms:g})" for sec, _, _, ms in lists["per_second"]
                   if ms > TARGET_P99_MS) or "none"),
        ("open-loop schedule lag p99 / max (ms)", _ms(lag, "p99", "max")),
        ("live runs still running at the end",
         f"{report['runs_running_at_end']} of {len(report['runs'])}"),
        ("SSE connections (clients + reconnects) / open at the end",
         f"{sse['connections']} / {sse['open_at_end']}"),
        ("SSE time to first event p50 / p99 / max (ms)",
         _ms(sse["first_event_ms"], "p50", "p99", "max")),
        ("SSE events: " + ", ".join(sorted(sse["events"])),
         " / ".join(str(sse["events"][k]) for k in sorted(sse["events"])) or "0"),
        ("SSE progress delay after a change p50 / p99 (ms)",
         _ms(sse["progress_delay_ms"], "p50", "p99")),
        ("SSE errors", f"{sse['error_count']} {sse['errors'] or ''}".strip()),
        ("server CPU s (% of one core)",
         f"{_f(server['cpu_s'])} ({_f(server['cpu_percent_of_one_core'], 1)} %)"),
        ("server RSS MB start / peak / end",
         _ms(server, "rss_mb_start", "rss_mb_peak", "rss_mb_end")),
        (f"machine CPU % ({report['machine']['cpu_count']} cores)",
         _f(report["machine_cpu_percent"], 1)),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)

    routes_table = Table(title="list routes (client side, ms)", title_justify="left")
    for column in ("route", "n", "errors", "p50", "p99", "max"):
        routes_table.add_column(column, justify="left" if column == "route" else "right")
    for name, r in lists["by_route"].items():
        routes_table.add_row(name, str(r["n"]), str(r["errors"]), _f(r["p50"], 1),
                             _f(r["p99"], 1), _f(r["max"], 1))
    console.print(routes_table)

    log = report["server_log"]
    server_table = Table(title=f"the server's own timing (access log, ms), statuses "
                               f"{log['statuses']}", title_justify="left")
    for column in ("path", "n", "p50", "p99", "max"):
        server_table.add_column(column, justify="left" if column == "path" else "right")
    for path, r in log["by_path"].items():
        server_table.add_row(path, str(r["n"]), _f(r["p50"], 1), _f(r["p99"], 1),
                             _f(r["max"], 1))
    console.print(server_table)

    runs_table = Table(title="live runs", title_justify="left")
    for column in ("run", "before", "after", "SSE events"):
        runs_table.add_column(column)
    for run in report["runs"]:
        runs_table.add_row(run["workflow_id"], f"{run['before']} {_f(run['percent_before'], 1)} %",
                           f"{run['after']} {_f(run['percent_after'], 1)} %",
                           str(sse["events_by_run"].get(run["workflow_id"], 0)))
    console.print(runs_table)

    cpu = ", ".join(f"{name} {seconds:.1f}" for name, seconds in
                    report["cpu_s_by_process"].items())
    console.print(f"CPU s in the window: {cpu}")
    for sample in lists["error_samples"] + sse["error_samples"]:
        console.print(f"[red]error:[/] {sample}", highlight=False)
    if report["cleanup"]["left_behind"]:
        console.print(f"[red]left behind by dev down (killed): "
                      f"{report['cleanup']['left_behind']}[/]")
    print_targets(report["targets"])


# -- the benchmark --------------------------------------------------------------------------


async def measure(stack: LoadStack, config: Config) -> dict[str, Any]:
    report: dict[str, Any] = {
        "benchmark": "api_load", "config": config_dict(config),
        "machine": machine(), "versions": versions(), "git": git_state(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    await stack.up()
    report["seeded"] = await seed(stack.database_url(), config.seed_runs,
                                  config.seed_findings)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=REQUEST_TIMEOUT_S) as api:
        runs, report["finished_run"] = await start_runs(api, stack, config)
        # One answer of every route first: a route that fails says so before the load.
        report["precheck"] = {}
        for route in routes(config):
            response = await api.get(route.path, params=route.params,
                                     headers=stack.auth("operator"))
            report["precheck"][route.name] = response.status_code
            if response.status_code != 200:
                console.print(f"[yellow]before the load: {route.name} answers "
                              f"{response.status_code}: {response.text[:200]}[/]",
                              highlight=False)
        await asyncio.sleep(config.settle_s)  # past the runs' first seconds
        before = {r: await run_document(api, stack, r) for r in runs}
        console.print(f"[dim]{len(runs)} runs running ({', '.join(runs)}); load for "
                      f"{config.seconds:g} s[/]")
        report.update(await load(stack, config, runs))
        after = {r: await run_document(api, stack, r) for r in runs}
    report["runs"] = [{
        "workflow_id": r, "before": before[r].get("status"), "after": after[r].get("status"),
        "percent_before": before[r].get("percent"), "percent_after": after[r].get("percent"),
    } for r in runs]
    report["runs_running_at_end"] = sum(run["after"] == "running" for run in report["runs"])
    return report


def config_dict(config: Config) -> dict[str, Any]:
    return {"seconds": config.seconds, "sse_clients": config.sse_clients, "rate": config.rate,
            "settle_s": config.settle_s,
            "upstream_latency_ms": config.latency_ms, "page_size": config.page_size,
            "seed_runs": config.seed_runs, "seed_findings": config.seed_findings,
            "f1_season": config.f1, "key_rate_per_s": config.key_rate,
            "key_burst": config.key_burst}


async def bench(config: Config) -> dict[str, Any]:
    stack = LoadStack(config)
    ACTIVE.append(stack)
    try:
        report = await measure(stack, config)
    finally:
        # Shielded: a Ctrl-C during the run must not skip stopping the stack.
        await asyncio.shield(stack.down())
    report["stack"] = {"dev_up_s": stack.up_s, "dev_down_s": stack.down_s}
    report["cleanup"] = {"left_behind": stack.left_behind,
                         "dev_down_failed": stack.down_output[-2000:]}
    report["targets"] = targets(report)
    return report


# -- command line ---------------------------------------------------------------------------


def default_latency_ms(seconds: float, page_size: int) -> int:
    """So that a sports run outlasts the window (and the settling before it) by
    RUN_MARGIN_S: its requests come one after the other."""
    sequential = DEMO_COMPETITIONS * math.ceil(DEMO_GAMES_PER_COMPETITION / page_size)
    return max(50, math.ceil((seconds + RUN_MARGIN_S) * 1000 / sequential))


def parse_args(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.api_load",
                                     description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="the load window")
    parser.add_argument("--sse-clients", type=int, default=50)
    parser.add_argument("--rate", type=float, default=20.0,
                        help="list requests per second (open loop)")
    parser.add_argument("--settle-seconds", type=float, default=5.0,
                        help="wait after the runs started, before the load")
    parser.add_argument("--latency-ms", type=int, default=None,
                        help="the sports upstream's delay per request (default: so that "
                             "its runs outlast the window)")
    parser.add_argument("--page-size", type=int, default=2,
                        help="page size of the sports runs")
    parser.add_argument("--seed-runs", type=int, default=2000,
                        help="finished runs seeded into pipeline.runs")
    parser.add_argument("--seed-findings", type=int, default=20000,
                        help="findings seeded into btc.discrepancies")
    parser.add_argument("--no-f1", action="store_true",
                        help="do not run the F1 season beside the sports runs")
    parser.add_argument("--key-rate", type=float, default=100.0,
                        help="PIPEWORKS_API_RATE_LIMIT_PER_SECOND (per key; default of the "
                             "server: 20)")
    parser.add_argument("--key-burst", type=int, default=200,
                        help="PIPEWORKS_API_RATE_LIMIT_BURST (default of the server: 100)")
    parser.add_argument("--keep-dir", action="store_true",
                        help="keep the temp dir (logs, Postgres data)")
    parser.add_argument("--json", type=Path, default=None, dest="out", metavar="FILE",
                        help="the JSON report (default: benchmarks/results/<UTC time>"
                             "-api-load.json)")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.rate <= 0 or args.sse_clients < 0 or args.page_size < 1:
        parser.error("--seconds and --rate must be positive, --sse-clients at least 0, "
                     "--page-size at least 1")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Config(
        seconds=args.seconds, sse_clients=args.sse_clients, rate=args.rate,
        settle_s=args.settle_seconds,
        latency_ms=(args.latency_ms if args.latency_ms is not None
                    else default_latency_ms(args.seconds + args.settle_seconds,
                                            args.page_size)),
        page_size=args.page_size, seed_runs=args.seed_runs, seed_findings=args.seed_findings,
        f1=not args.no_f1, key_rate=args.key_rate, key_burst=args.key_burst,
        keep_dir=args.keep_dir, out=args.out or RESULTS / f"{stamp}-api-load.json")


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    met: list[bool] = []

    def render_and_judge(report: dict[str, Any]) -> None:
        render(report)
        met.extend(t["met"] for t in report["targets"])

    code = run_and_report(config.out, bench(config), render_and_judge, stacks=ACTIVE)
    if code != 0:
        return code
    return 0 if met and all(met) else 1


if __name__ == "__main__":
    sys.exit(main())
