"""The F1 benchmark (issue 11): a 2024 season synced by pipeworks against a hand-written
asyncio yardstick, the season's derived metrics, live polling, histories, request rate.

    python -m benchmarks.f1_season [--rounds 24] [--rate-limit 0 | --unlimited]
        [--latency-ms 0] [--live-seconds 60] [--concurrency 4] [--processes 1]
        [--py-spy DIR] [--keep-dir] [--out benchmarks/results/<timestamp>-f1.json]

Starts an embedded Postgres, a Temporal dev server and the demo F1 upstream (the full-size
2024 season, `load_preset("season")`, or its first `--rounds` race weekends) in a temp
directory, and a pipeworks worker serving only the F1 pipeline as a separate process.
Then, against the same upstream and the same Postgres:

1. yardstick, `benchmarks/yardstick_f1.py` (its own process): the season's calendar,
   then every session's streams, whole session per request, upserted; timed; its rows'
   checksums kept; then the f1 tables are emptied;
2. pipeworks: `F1SeasonSyncWorkflow` (mode full, `--concurrency` sessions at once) on a
   warmed-up worker; timed, worker CPU and RSS sampled, every history's length read;
3. derived metrics: `recompute_session` of every session with laps, one after the
   other on one connection in this process, into emptied derived tables, then again
   with nothing changed;
4. live: the Bahrain race (9472) replayed on the upstream at speed 1 from its start,
   `F1LiveSessionWorkflow` polling it every 5 s for `--live-seconds`; the worker's CPU
   seconds over that time, as a share of one core; then the live run is cancelled.

Both sides keep to the same request rate (`--rate-limit`, default 0: none; the contract's
is 3 per second). The upstream counts the most requests within any 10 s. Prints tables
and writes every number as JSON. Everything it started is stopped at the end, also on
failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from rich.table import Table
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowHistory

from activities.f1.derive import recompute_session
from activities.f1.derived_tables import DERIVED_WRITE_ORDER
from activities.f1.endpoints import MEETINGS as PIPELINE_MEETINGS
from activities.f1.endpoints import SESSION_ENDPOINTS
from activities.f1.endpoints import SESSIONS as PIPELINE_SESSIONS
from activities.f1.plans import scope_of
from benchmarks import history as history_analysis
from benchmarks import sampling
from benchmarks.f1_common import RAW_STREAMS, checksums, row_counts
from benchmarks.run import (
    PIPELINE_TABLES,
    RESULTS,
    _f,
    begin,
    console,
    finish,
    git_state,
    machine,
    run_measured,
    versions,
)
from benchmarks.stack import (
    BenchStack,
    connection,
    print_cpu_by_category,
    print_targets,
    run_and_report,
    running,
)
from devstack.f1 import F1Dataset, F1FaultConfig, F1UpstreamServer

YEAR = 2024
SEASON_ROUNDS = 24
LIVE_SESSION = 9472           # Bahrain 2024, the race (round 1: in every --rounds)
LIVE_POLL_SECONDS = 5.0
YARDSTICK_COPY = "bench_yardstick"  # the yardstick's rows, kept to compare with
LIVE_STEADY_AFTER_S = 10.0    # the live CPU share is also given without the first 10 s
CANCEL_TIMEOUT_S = 120.0
UNLIMITED = 100_000.0         # PIPEWORKS_F1_RATE_LIMIT's maximum: in effect no limit
CONTRACT_RATE = 3.0           # f1-api.md: 30 requests per 10 s
CONTRACT_WINDOW_REQUESTS = 30
# The targets.
TARGET_RATIO = 1.3
TARGET_DERIVE_S = 10.0
TARGET_LIVE_CPU_PERCENT = 10.0
TARGET_MAX_HISTORY_EVENTS = 10_000


@dataclass(frozen=True)
class F1Config:
    rounds: int
    rate_limit: float             # requests per second for both; 0: no limit
    latency_ms: float
    live_seconds: float           # 0: no live step
    concurrency: int              # sessions at once, for both
    processes: int                # `pipeworks worker --processes N`
    out: Path
    py_spy: Path | None = None
    keep_dir: bool = False
    unsandboxed: bool = False     # experiment: the worker without the workflow sandbox
    seed: int = 7

    @property
    def full_season(self) -> bool:
        return self.rounds >= SEASON_ROUNDS

    @property
    def worker_rate_limit(self) -> float:
        return self.rate_limit if self.rate_limit > 0 else UNLIMITED

    def as_dict(self) -> dict[str, Any]:
        return {"year": YEAR, "rounds": self.rounds, "full_season": self.full_season,
                "rate_limit_per_s": self.rate_limit or None,
                "worker_f1_rate_limit": self.worker_rate_limit,
                "latency_ms": self.latency_ms, "live_seconds": self.live_seconds,
                "live_session": LIVE_SESSION, "live_poll_seconds": LIVE_POLL_SECONDS,
                "max_concurrent_sessions": self.concurrency,
                "worker_processes": self.processes, "seed": self.seed,
                "worker": "python -m " + ("benchmarks.bench_worker --unsandboxed"
                                          if self.unsandboxed else "starters.cli worker"),
                "dataset": "F1Dataset.build(seed)" + ("" if self.full_season else
                                                      f", rounds 1-{self.rounds}")
                + " (the `season` preset's density)",
                "postgres": "embedded, durable (fsync on)"}


def check_tables_match_pipeline() -> None:
    """f1_common's tables and columns are the pipeline's (endpoints.py)."""
    pipeline = {e.name: (e.spec.name, e.spec.keys, e.spec.columns, e.session_types)
                for e in (PIPELINE_MEETINGS, PIPELINE_SESSIONS, *SESSION_ENDPOINTS)}
    ours = {s.name: (s.table, s.keys, s.columns, s.session_types) for s in RAW_STREAMS}
    if ours != pipeline:
        differ = sorted(n for n in pipeline.keys() | ours.keys()
                        if pipeline.get(n) != ours.get(n))
        raise RuntimeError(f"benchmarks/f1_common.py is out of date with "
                           f"activities/f1/endpoints.py: {differ}")


# -- the stack -------------------------------------------------------------------------


class F1Stack(BenchStack):
    """The shared stack (`stack.py`) with the F1 upstream on threads of this process and
    a worker serving the F1 pipeline only."""

    def __init__(self, config: F1Config, dataset: F1Dataset) -> None:
        super().__init__(name="f1", pipelines="f1", processes=config.processes,
                         unsandboxed=config.unsandboxed, keep_dir=config.keep_dir)
        self.config = config
        self.upstream = F1UpstreamServer(dataset,
                                         faults=F1FaultConfig(latency_ms=config.latency_ms))

    async def start_upstream(self) -> None:
        self.upstream.start()

    async def stop_upstream(self) -> None:
        self.upstream.stop()

    def kill_upstream(self) -> None:
        self.upstream.stop()

    def worker_env(self) -> dict[str, str]:
        return {"PIPEWORKS_F1_API_URL": self.upstream.url,
                "PIPEWORKS_F1_RATE_LIMIT": str(self.config.worker_rate_limit)}


def running_stack(config: F1Config, dataset: F1Dataset
                  ) -> contextlib.AbstractAsyncContextManager[F1Stack]:
    return running(F1Stack(config, dataset))


# -- database helpers ------------------------------------------------------------------


async def empty_f1_tables(dsn: str) -> None:
    """Every f1 table but the metric parameters, and the pipeline's run bookkeeping."""
    async with connection(dsn) as conn:
        tables = [r["name"] for r in await conn.fetch(
            "SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables"
            " WHERE schemaname = 'f1' AND tablename <> 'metric_params' ORDER BY 1")]
        await conn.execute("TRUNCATE " + ", ".join([*tables, *PIPELINE_TABLES]))


async def forget_session(dsn: str, session_key: int) -> int:
    """Deletes a session's rows from every f1 table but the calendar: as before it ran."""
    deleted = 0
    async with connection(dsn) as conn:
        tables = [r["name"] for r in await conn.fetch(
            "SELECT format('%I.%I', table_schema, table_name) AS name"
            " FROM information_schema.columns WHERE table_schema = 'f1'"
            " AND column_name = 'session_key' AND table_name <> 'sessions' ORDER BY 1")]
        for table in tables:
            status = await conn.execute(
                f"DELETE FROM {table} WHERE session_key = $1", session_key)
            deleted += int(status.split()[-1])
    return deleted


async def keep_copy(dsn: str) -> None:
    """The raw tables' rows as they are now, into schema `bench_yardstick`."""
    async with connection(dsn) as conn:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {YARDSTICK_COPY}")
        for stream in RAW_STREAMS:
            copy = f"{YARDSTICK_COPY}.{stream.table.split('.')[1]}"
            await conn.execute(f"DROP TABLE IF EXISTS {copy}; CREATE TABLE {copy} AS"
                               f" SELECT {', '.join(stream.columns)} FROM {stream.table}")


async def rows_not_in_copy(dsn: str, tables: Sequence[str]) -> dict[str, int]:
    """Per table: rows (data columns) that the copy does not hold."""
    found = {}
    async with connection(dsn) as conn:
        for stream in RAW_STREAMS:
            if stream.table not in tables:
                continue
            cols = ", ".join(stream.columns)
            copy = f"{YARDSTICK_COPY}.{stream.table.split('.')[1]}"
            found[stream.table] = int(await conn.fetchval(
                f"SELECT count(*) FROM (SELECT {cols} FROM {stream.table}"
                f" EXCEPT ALL SELECT {cols} FROM {copy}) d"))
    return found


async def db_state(dsn: str) -> tuple[dict[str, int], dict[str, str]]:
    async with connection(dsn) as conn:
        return await row_counts(conn), await checksums(conn)


async def server_version(dsn: str) -> str:
    async with connection(dsn) as conn:
        return str(await conn.fetchval("SHOW server_version"))


# -- the steps -------------------------------------------------------------------------


def upstream_stats(stack: F1Stack) -> dict[str, Any]:
    stats = stack.upstream.stats.snapshot(log=False)
    return {"requests": stats["total"],
            "peak_requests_per_10s": stats.get("peak_requests_per_window"),
            "requests_by_route": {r: sum(c.values()) for r, c in stats["by_route"].items()},
            "requests_by_status": stats["by_status"]}


async def run_yardstick(stack: F1Stack) -> dict[str, Any]:
    config = stack.config
    stack.upstream.stats.clear()
    result, usage = await run_measured(stack.sampler, "yardstick", "benchmarks.yardstick_f1", [
        "--dsn", stack.dsn, "--url", stack.upstream.url, "--year", str(YEAR),
        "--concurrency", str(config.concurrency), "--rate-limit", str(config.rate_limit)])
    counts, sums = await db_state(stack.dsn)
    result.update(upstream_stats(stack), rows=counts, rows_total=sum(counts.values()),
                  checksums=sums, **usage)
    return result


async def warm_up(stack: F1Stack, dataset: F1Dataset) -> float:
    """One small season run (the first weekend's first practice), then everything is
    emptied: the worker has run each workflow and activity once before it is timed."""
    first = min(m["meeting_key"] for m in dataset.calendar.meetings)
    started = time.perf_counter()
    handle = await stack.client.start_workflow(
        "F1SeasonSyncWorkflow",
        {"year": YEAR, "mode": "full", "meeting_keys": [first], "session_names": ["Practice 1"]},
        id=f"bench-f1-warmup-{uuid.uuid4().hex[:6]}", task_queue=stack.task_queue)
    result = await asyncio.wait_for(handle.result(), timeout=600)
    if result.get("status") != "completed":
        raise RuntimeError(f"the warm-up did not complete: {result}")
    await empty_f1_tables(stack.dsn)
    return time.perf_counter() - started


def _at(event: HistoryEvent) -> float:
    return event.event_time.seconds + event.event_time.nanos / 1e9


def session_breakdown(histories: list[WorkflowHistory]) -> dict[str, Any]:
    """Where a session's time went, from its child workflow's history (the steps of a
    session run one after the other): per session, the mean span (first to last event),
    time inside each activity type, activities waiting for a worker, and workflow tasks
    (scheduled to completed: waiting for the worker's poll, then the worker running the
    workflow code). And in the season run: from a session's end to the next one's start."""
    spans: list[float] = []
    run: dict[str, float] = {}
    queued = wft_wait = wft_run = 0.0
    wft_count = 0
    for history in histories[1:]:
        if not history.events:
            continue
        spans.append(_at(history.events[-1]) - _at(history.events[0]))
        names: dict[int, str] = {}
        at: dict[int, float] = {}
        for event in history.events:
            kind = event.WhichOneof("attributes")
            if kind == "activity_task_scheduled_event_attributes":
                names[event.event_id] = (
                    event.activity_task_scheduled_event_attributes.activity_type.name)
                at[event.event_id] = _at(event)
            elif kind == "activity_task_started_event_attributes":
                sid = event.activity_task_started_event_attributes.scheduled_event_id
                queued += _at(event) - at.get(sid, _at(event))
                at[-sid] = _at(event)
            elif kind == "activity_task_completed_event_attributes":
                sid = event.activity_task_completed_event_attributes.scheduled_event_id
                name = names.get(sid, "?")
                run[name] = run.get(name, 0.0) + _at(event) - at.get(-sid, _at(event))
            elif kind == "workflow_task_scheduled_event_attributes":
                at[event.event_id] = _at(event)
            elif kind == "workflow_task_started_event_attributes":
                sid = event.workflow_task_started_event_attributes.scheduled_event_id
                wft_wait += _at(event) - at.get(sid, _at(event))
                at[-sid] = _at(event)
            elif kind == "workflow_task_completed_event_attributes":
                sid = event.workflow_task_completed_event_attributes.scheduled_event_id
                wft_run += _at(event) - at.get(-sid, _at(event))
                wft_count += 1
    n = len(spans)
    if not n:
        return {"count": 0}
    # In the season's history: each session's completion to the next session's start.
    starts: list[float] = []
    ends: list[float] = []
    for event in histories[0].events:
        kind = event.WhichOneof("attributes")
        if kind == "start_child_workflow_execution_initiated_event_attributes":
            starts.append(_at(event))
        elif kind == "child_workflow_execution_completed_event_attributes":
            ends.append(_at(event))
    handoffs = [min(s for s in starts if s >= end) - end for end in ends
                if any(s >= end for s in starts)]
    in_activities = sum(run.values())
    return {
        "count": n, "mean_s": statistics.fmean(spans), "max_s": max(spans),
        "sum_s": sum(spans),
        "mean_in_activities_s": {k: v / n for k, v in sorted(run.items(),
                                                             key=lambda kv: -kv[1])},
        "mean_in_activities_total_s": in_activities / n,
        "mean_activity_queued_s": queued / n,
        "mean_workflow_tasks": wft_count / n,
        "mean_workflow_task_wait_s": wft_wait / n,
        "mean_workflow_task_run_s": wft_run / n,
        "mean_other_s": (sum(spans) - in_activities - queued - wft_wait - wft_run) / n,
        "mean_handoff_s": statistics.fmean(handoffs) if handoffs else None,
        # Sessions in flight on average: the sum of their spans over the run's span.
        "mean_in_flight": sum(spans) / max(_at(histories[0].events[-1])
                                           - _at(histories[0].events[0]), 1e-9),
    }


async def run_pipeworks(stack: F1Stack) -> dict[str, Any]:
    config = stack.config
    payload = {"year": YEAR, "mode": "full", "max_concurrent_sessions": config.concurrency}
    stack.upstream.stats.clear()
    assert stack.worker is not None
    pids = [p.pid for p in stack.worker_processes()]
    spying: contextlib.AbstractAsyncContextManager[list[Path]] = (
        sampling.sampled(pids, config.py_spy, "season") if config.py_spy
        else contextlib.nullcontext([]))
    async with spying as spy_files:
        phase = begin(stack.sampler)
        started = time.perf_counter()
        handle: WorkflowHandle[Any, Any] = await stack.client.start_workflow(
            "F1SeasonSyncWorkflow", payload, id=f"bench-f1-season-{uuid.uuid4().hex[:6]}",
            task_queue=stack.task_queue)
        result = await asyncio.wait_for(handle.result(), timeout=4 * 3600)
        wall = time.perf_counter() - started
        usage = finish(stack.sampler, phase)
    if not isinstance(result, dict) or result.get("status") != "completed":
        raise RuntimeError(f"the season run did not complete: {result}")
    stats = upstream_stats(stack)
    histories = await history_analysis.run_histories(stack.client, handle)
    profile = history_analysis.analyse(histories)
    counts, sums = await db_state(stack.dsn)
    return {
        "workflow_id": handle.id, "wall_s": wall, **stats,
        "status": result["status"], "message": result.get("message"),
        "records": result.get("records"), "errors": result.get("errors"),
        "rows": counts, "rows_total": sum(counts.values()), "checksums": sums,
        "history": history_analysis.size(histories),
        "activities": profile["activities"], "workflow_tasks": profile["workflow_tasks"],
        "session_spans": session_breakdown(histories),
        "worker_peak_rss_mb": stack.sampler.peak_rss_mb("worker", usage["since"],
                                                        usage["until"]),
        "cpu_s": usage["cpu_s"], "cpu_total_s": usage["cpu_total_s"],
        **({"worker_cpu_by_category_s": sampling.categorised(spy_files),
            "worker_top_frames_s": sampling.top_frames(spy_files)} if spy_files else {}),
    }


async def derive_season(stack: F1Stack) -> dict[str, Any]:
    """recompute_session for every session with laps, sequentially on one connection:
    into emptied derived tables, then again with nothing changed."""
    run_id = f"bench-derive-{uuid.uuid4().hex[:8]}"
    phase = begin(stack.sampler)
    async with connection(stack.dsn) as conn:
        sessions = await conn.fetch(
            "SELECT s.session_key, s.session_type FROM f1.sessions s WHERE EXISTS"
            " (SELECT 1 FROM f1.laps l WHERE l.session_key = s.session_key)"
            " ORDER BY s.date_start, s.session_key")
        await conn.execute("TRUNCATE " + ", ".join(spec.name for spec in DERIVED_WRITE_ORDER))
        passes: dict[str, Any] = {}
        for name in ("fresh", "unchanged"):
            per_type: dict[str, float] = {}
            slowest = (0.0, 0)
            written = 0
            started = time.perf_counter()
            for row in sessions:
                key = row["session_key"]
                one = time.perf_counter()
                outcome = await recompute_session(conn, key, run_id=run_id,
                                                  scope=scope_of(key))
                took = time.perf_counter() - one
                per_type[row["session_type"]] = per_type.get(row["session_type"], 0.0) + took
                slowest = max(slowest, (took, key))
                written += sum(c["inserted"] + c["updated"] + c["deleted"]
                               for c in outcome.counts.values())
            passes[name] = {"seconds": time.perf_counter() - started,
                            "seconds_by_session_type": per_type, "rows_written": written,
                            "slowest_session": {"session_key": slowest[1],
                                                "seconds": slowest[0]}}
        derived = {spec.name: int(await conn.fetchval(
            f"SELECT count(*) FROM {spec.name}")) for spec in DERIVED_WRITE_ORDER}
    usage = finish(stack.sampler, phase)
    types: dict[str, int] = {}
    for row in sessions:
        types[row["session_type"]] = types.get(row["session_type"], 0) + 1
    return {"sessions": len(sessions), "sessions_by_type": types, **passes,
            "derived_rows": derived, "cpu_s": usage["cpu_s"]}


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


async def run_live(stack: F1Stack) -> dict[str, Any]:
    """The worker's CPU while F1LiveSessionWorkflow polls a race replayed at speed 1."""
    config = stack.config
    forgotten = await forget_session(stack.dsn, LIVE_SESSION)
    stack.upstream.replay(LIVE_SESSION, speed=1)
    stack.upstream.stats.clear()
    procs = stack.worker_processes()
    cpu_start, t_start = cpu_seconds(procs), time.monotonic()
    handle: WorkflowHandle[Any, Any] = await stack.client.start_workflow(
        "F1LiveSessionWorkflow", {"session_key": LIVE_SESSION, "poll_seconds": LIVE_POLL_SECONDS},
        id=f"bench-f1-live-{uuid.uuid4().hex[:6]}", task_queue=stack.task_queue)
    steady: tuple[float, float] | None = None
    if config.live_seconds > 2 * LIVE_STEADY_AFTER_S:
        await asyncio.sleep(LIVE_STEADY_AFTER_S)
        steady = cpu_seconds(procs), time.monotonic()
    await asyncio.sleep(max(0.0, t_start + config.live_seconds - time.monotonic()))
    cpu_end, t_end = cpu_seconds(procs), time.monotonic()
    stats = upstream_stats(stack)
    progress = await handle.query("progress")
    polls = next((s.get("done") for s in progress.get("stages", [])
                  if s.get("name") == "poll"), None)
    rows = progress.get("records")
    # As `pipeworks cancel` does (starters/client.py): the `cancel` signal. (Temporal's
    # own cancel request is lost when it arrives during a poll: see the README.)
    cancelled_at = time.monotonic()
    await handle.signal("cancel", {"reason": "benchmark: live measurement over"})
    with contextlib.suppress(WorkflowFailureError, TimeoutError):
        await asyncio.wait_for(handle.result(), timeout=CANCEL_TIMEOUT_S)
    described = await handle.describe()
    outcome = described.status.name if described.status else "unknown"
    if outcome == "RUNNING":
        await handle.terminate("benchmark: the cancel signal did not end the live run")
        outcome = f"still running {CANCEL_TIMEOUT_S:g} s after the cancel signal: terminated"
    cancel_s = time.monotonic() - cancelled_at
    history = history_analysis.size([await handle.fetch_history()])
    stack.upstream.clock.clear()
    wall = t_end - t_start
    result: dict[str, Any] = {
        "session_key": LIVE_SESSION, "poll_seconds": LIVE_POLL_SECONDS, "wall_s": wall,
        "rows_deleted_before": forgotten, "polls": polls, "records": rows,
        "worker_cpu_s": cpu_end - cpu_start,
        "worker_cpu_percent": 100 * (cpu_end - cpu_start) / wall, **stats,
        "outcome": outcome, "cancel_s": cancel_s, "history": history}
    if steady is not None:
        result["worker_cpu_percent_after_10s"] = (
            100 * (cpu_end - steady[0]) / (t_end - steady[1]))
    return result


# -- the benchmark ---------------------------------------------------------------------


def build_dataset(config: F1Config) -> F1Dataset:
    rounds = None if config.full_season else tuple(range(1, config.rounds + 1))
    return F1Dataset.build(seed=config.seed, rounds=rounds)


async def bench(config: F1Config) -> dict[str, Any]:
    check_tables_match_pipeline()
    report: dict[str, Any] = {
        "benchmark": "pipeworks F1 season sync vs an asyncio yardstick (issue 11)",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config.as_dict(), "machine": machine(), "versions": versions(),
        "code": git_state(), "load_average_at_start": os.getloadavg(),
    }
    t = time.perf_counter()
    dataset = await asyncio.to_thread(build_dataset, config)
    report["dataset"] = {**dataset.counts(), "build_s": round(time.perf_counter() - t, 2)}
    console.print(f"dataset: {report['dataset']}")
    async with running_stack(config, dataset) as stack:
        report["versions"]["postgres"] = await server_version(stack.dsn)
        rate = f"{config.rate_limit:g} requests/s" if config.rate_limit else "no rate limit"
        console.print(f"[bold]1.[/] yardstick: asyncio + httpx + asyncpg ({rate}) ...")
        yardstick = await run_yardstick(stack)
        console.print(f"   {yardstick['wall_s']:.2f} s, {yardstick['requests']} requests, "
                      f"{yardstick['sessions']} sessions, {yardstick['rows_total']:,} rows")
        await keep_copy(stack.dsn)
        await empty_f1_tables(stack.dsn)
        report["yardstick"] = yardstick

        await stack.start_worker()
        console.print("worker up; warm-up (one practice session) ...")
        report["warm_up_s"] = await warm_up(stack, dataset)
        console.print(f"[bold]2.[/] pipeworks: F1SeasonSyncWorkflow, mode full ({rate}) ...")
        pw = await run_pipeworks(stack)
        pw["same_rows_as_yardstick"] = pw["rows"] == yardstick["rows"]
        pw["same_checksums_as_yardstick"] = pw["checksums"] == yardstick["checksums"]
        # The upstream may answer a key twice with different values, in an order it does
        # not define: which one a run keeps is then chance (yardstick["duplicates"]).
        pw["rows_differing_from_yardstick"] = await rows_not_in_copy(stack.dsn, [
            t for t in pw["checksums"] if pw["checksums"][t] != yardstick["checksums"].get(t)])
        console.print(f"   {pw['wall_s']:.2f} s, {pw['requests']} requests, "
                      f"{pw['rows_total']:,} rows, same rows as the yardstick: "
                      f"{pw['same_checksums_as_yardstick']}")
        report["pipeworks"] = pw
        report["ratio"] = pw["wall_s"] / yardstick["wall_s"]

        console.print("[bold]3.[/] derived metrics: recompute_session of every session "
                      "with laps ...")
        report["derive"] = await derive_season(stack)
        console.print(f"   {report['derive']['fresh']['seconds']:.2f} s "
                      f"({report['derive']['sessions']} sessions)")

        if config.live_seconds > 0:
            console.print(f"[bold]4.[/] live: session {LIVE_SESSION} replayed at speed 1, "
                          f"polled every {LIVE_POLL_SECONDS:g} s for "
                          f"{config.live_seconds:g} s ...")
            report["live"] = await run_live(stack)
            console.print(f"   worker CPU {report['live']['worker_cpu_percent']:.1f}% of a "
                          f"core, {report['live']['polls']} polls")
        report["worker_peak_rss_mb_overall"] = stack.sampler.peak_rss_mb("worker")
        await stack.stop_worker()
    report["targets"] = targets(config, report)
    report["load_average_at_end"] = os.getloadavg()
    report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return report


def targets(config: F1Config, report: dict[str, Any]) -> list[dict[str, Any]]:
    note = "" if config.full_season else f" (this run: {config.rounds} of 24 rounds)"
    pw, y = report["pipeworks"], report["yardstick"]
    ratio = report["ratio"]
    rows: list[dict[str, Any]] = [
        {"target": f"season sync within {TARGET_RATIO}x of the yardstick" + note,
         "measured": f"{ratio:.2f}x ({pw['wall_s']:.1f} s vs {y['wall_s']:.1f} s)",
         "met": ratio <= TARGET_RATIO}]
    d = report["derive"]["fresh"]
    rows.append({"target": f"derived metrics of a season <= {TARGET_DERIVE_S:g} s" + note,
                 "measured": f"{d['seconds']:.2f} s ({report['derive']['sessions']} sessions)",
                 "met": d["seconds"] <= TARGET_DERIVE_S})
    live = report.get("live")
    if live:
        rows.append({"target": f"live polling at {LIVE_POLL_SECONDS:g} s: worker CPU under "
                               f"{TARGET_LIVE_CPU_PERCENT:g}% of a core",
                     "measured": f"{live['worker_cpu_percent']:.1f}% over {live['wall_s']:.0f}"
                                 f" s ({live['polls']} polls)",
                     "met": live["worker_cpu_percent"] < TARGET_LIVE_CPU_PERCENT})
    largest = max(pw["history"]["max_events"],
                  live["history"]["max_events"] if live else 0)
    rows.append({"target": f"every history < {TARGET_MAX_HISTORY_EVENTS:,} events",
                 "measured": f"largest {largest:,} ({pw['history']['workflows']} workflows "
                             f"in the season run{', and the live run' if live else ''})",
                 "met": largest < TARGET_MAX_HISTORY_EVENTS})
    if config.rate_limit and config.rate_limit <= CONTRACT_RATE:
        peaks = [("pipeworks", pw["peak_requests_per_10s"]),
                 ("yardstick", y["peak_requests_per_10s"])]
        if live:
            peaks.append(("live", live["peak_requests_per_10s"]))
        worst = max(p for _, p in peaks)
        rows.append({"target": f"at most {CONTRACT_WINDOW_REQUESTS} requests in any 10 s "
                               "(f1-api.md)",
                     "measured": ", ".join(f"{n} {p}" for n, p in peaks),
                     "met": worst <= CONTRACT_WINDOW_REQUESTS})
    return rows


# -- output ----------------------------------------------------------------------------


def render(report: dict[str, Any]) -> None:
    c, pw, y = report["config"], report["pipeworks"], report["yardstick"]
    rate = (f"{c['rate_limit_per_s']:g} requests/s" if c["rate_limit_per_s"]
            else "no rate limit")
    title = (f"F1 {c['year']}: {c['rounds']} rounds, {pw['session_spans']['count']} sessions, "
             f"{c['max_concurrent_sessions']} at once, {rate}, {_f(c['latency_ms'], 0)} ms/"
             f"request, {report['machine']['cpu_count']} CPUs")
    main = Table(title=title, title_justify="left")
    for col in ("run", "wall s", "rows", "requests", "peak requests / 10 s",
                "pipeworks ÷ this", "CPU s (all procs)", "peak RSS MB"):
        main.add_column(col, justify="left" if col == "run" else "right")
    main.add_row("pipeworks (F1SeasonSyncWorkflow, full)", _f(pw["wall_s"]),
                 f"{pw['rows_total']:,}", str(pw["requests"]), str(pw["peak_requests_per_10s"]),
                 "1.00", _f(pw["cpu_total_s"], 1), _f(pw["worker_peak_rss_mb"], 0))
    main.add_row("yardstick (asyncio+httpx+asyncpg)", _f(y["wall_s"]), f"{y['rows_total']:,}",
                 str(y["requests"]), str(y["peak_requests_per_10s"]),
                 _f(pw["wall_s"] / y["wall_s"]), _f(y["cpu_total_s"], 1),
                 _f(y["peak_rss_mb"], 0))
    console.print(main)

    details = Table(title="details", title_justify="left", show_header=False)
    details.add_column()
    details.add_column(justify="right")
    if c["rate_limit_per_s"]:
        details.add_row("request floor at the rate limit (requests / rate)",
                        f"pipeworks {pw['requests'] / c['rate_limit_per_s']:.1f} s, yardstick "
                        f"{y['requests'] / c['rate_limit_per_s']:.1f} s")
    differing = pw["rows_differing_from_yardstick"]
    details.add_row("same rows as the yardstick", f"counts {pw['same_rows_as_yardstick']}, "
                    f"checksums {pw['same_checksums_as_yardstick']}"
                    + (" (rows that differ: " + ", ".join(
                        f"{t} {n}" for t, n in differing.items())
                       + f"; keys the upstream answered more than once: "
                       f"{y['duplicates']})" if differing else ""))
    h = pw["history"]
    details.add_row("season histories", f"run {h['events']:,} events; {h['workflows'] - 1} "
                    f"sessions, largest {h['max_events']:,}; all {h['total_events']:,} events")
    s = pw["session_spans"]
    if s["count"]:
        acts = s["mean_in_activities_s"]
        top = ", ".join(f"{k.removeprefix('f1_')} {_f(1000 * v, 0)}" for k, v in
                        list(acts.items())[:3])
        rest = sum(list(acts.values())[3:])
        details.add_row(
            "per session (child workflow), mean ms",
            f"span {_f(1000 * s['mean_s'], 0)} (max {_f(1000 * s['max_s'], 0)}) = activities "
            f"{_f(1000 * s['mean_in_activities_total_s'], 0)} ({top}, {len(acts) - 3} others "
            f"{_f(1000 * rest, 0)}) + queued {_f(1000 * s['mean_activity_queued_s'], 0)} + "
            f"{s['mean_workflow_tasks']:.1f} workflow tasks "
            f"{_f(1000 * (s['mean_workflow_task_wait_s'] + s['mean_workflow_task_run_s']), 0)}"
            f" (waiting {_f(1000 * s['mean_workflow_task_wait_s'], 0)}, running "
            f"{_f(1000 * s['mean_workflow_task_run_s'], 0)}) + other "
            f"{_f(1000 * s['mean_other_s'], 0)}; next session starts "
            f"{_f(1000 * (s['mean_handoff_s'] or 0), 0)} ms after one ends; "
            f"{s['mean_in_flight']:.1f} in flight")
    details.add_row("CPU s by process (pipeworks run)", ", ".join(
        f"{k} {v:.1f}" for k, v in sorted(pw["cpu_s"].items(), key=lambda kv: -kv[1])))
    details.add_row("CPU s by process (yardstick run)", ", ".join(
        f"{k} {v:.1f}" for k, v in sorted(y["cpu_s"].items(), key=lambda kv: -kv[1])))
    details.add_row("yardstick, summed over tasks",
                    f"HTTP {_f(y['http_s'])} s, convert {_f(y['convert_s'])} s, merge "
                    f"{_f(y['merge_s'])} s, rate-limit waits {_f(y['rate_limit_waited_s'])} s")
    d = report["derive"]
    details.add_row("derived metrics (recompute_session, sequential)",
                    f"{d['sessions']} sessions: {_f(d['fresh']['seconds'])} s into empty "
                    f"tables, {_f(d['unchanged']['seconds'])} s unchanged")
    live = report.get("live")
    if live:
        steady = live.get("worker_cpu_percent_after_10s")
        details.add_row("live polling (worker CPU, one core = 100%)",
                        f"{live['worker_cpu_percent']:.1f}% ({_f(live['worker_cpu_s'])} CPU s "
                        f"in {_f(live['wall_s'], 0)} s"
                        + (f"; {steady:.1f}% after the first 10 s" if steady is not None
                           else "")
                        + f"), {live['polls']} polls, {live['requests']} requests, peak "
                        f"{live['peak_requests_per_10s']} / 10 s; after the cancel signal: "
                        f"{live['outcome']} in {_f(live['cancel_s'], 1)} s")
    console.print(details)

    prof = Table(title="the season run's activities (from its histories)",
                 title_justify="left")
    for col in ("activity", "count", "mean run ms", "total run s", "mean queued ms"):
        prof.add_column(col, justify="left" if col == "activity" else "right")
    merged: dict[str, dict[str, float]] = {}
    for name, a in pw["activities"].items():
        short = name.split(":")[0]  # f1_sync_streams:<its streams> as one
        m = merged.setdefault(short, {"count": 0, "run_s": 0.0, "queue_s": 0.0})
        for k in m:
            m[k] += a[k]
    for name, a in sorted(merged.items(), key=lambda kv: -kv[1]["run_s"]):
        n = max(a["count"], 1)
        prof.add_row(name, str(int(a["count"])), _f(1000 * a["run_s"] / n, 1),
                     _f(a["run_s"]), _f(1000 * a["queue_s"] / n, 1))
    console.print(prof)
    print_cpu_by_category(pw)

    print_targets(report["targets"])


# -- command line ----------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> F1Config:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.f1_season",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=SEASON_ROUNDS,
                        help="the first N race weekends of 2024 (default all 24)")
    parser.add_argument("--rate-limit", type=float, default=0.0, metavar="PER_S",
                        help="requests per second, for pipeworks (PIPEWORKS_F1_RATE_LIMIT) and "
                             f"the yardstick alike; 0: none (default). The contract's is "
                             f"{CONTRACT_RATE:g}: a full season then takes ~8 min per side")
    parser.add_argument("--unlimited", action="store_true", help="the same as --rate-limit 0")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="upstream delay per request (default 0)")
    parser.add_argument("--live-seconds", type=float, default=60.0,
                        help="how long the live run is measured (default 60; 0: no live step)")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="sessions at once: max_concurrent_sessions and the yardstick's "
                             "(default 4)")
    parser.add_argument("--processes", type=int, default=1,
                        help="worker processes (`pipeworks worker --processes N`, default 1)")
    parser.add_argument("--py-spy", type=Path, metavar="DIR",
                        help="sample the worker with py-spy during the season run (raw stacks "
                             "into DIR); CPU seconds by category in the report")
    parser.add_argument("--keep-dir", action="store_true",
                        help="keep the temp dir (worker log, Postgres data and log)")
    parser.add_argument("--unsandboxed", action="store_true",
                        help="experiment: the worker without Temporal's workflow sandbox "
                             "(benchmarks/bench_worker.py; one process)")
    parser.add_argument("--out", type=Path,
                        help="JSON file (default benchmarks/results/<timestamp>-f1.json)")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= SEASON_ROUNDS:
        parser.error(f"--rounds must be from 1 to {SEASON_ROUNDS}")
    if args.rate_limit < 0 or args.rate_limit > UNLIMITED:
        parser.error(f"--rate-limit must be from 0 to {UNLIMITED:g}")
    if args.concurrency < 1 or args.processes < 1 or args.live_seconds < 0:
        parser.error("--concurrency and --processes must be at least 1, --live-seconds >= 0")
    if args.unsandboxed and args.processes > 1:
        parser.error("--unsandboxed runs one worker process")
    if args.py_spy and sampling.available() is None:
        parser.error("--py-spy: py-spy is not installed (pip install -e '.[bench]')")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return F1Config(rounds=args.rounds, rate_limit=0.0 if args.unlimited else args.rate_limit,
                    latency_ms=args.latency_ms, live_seconds=args.live_seconds,
                    concurrency=args.concurrency, processes=args.processes,
                    out=args.out or RESULTS / f"{stamp}-f1.json", py_spy=args.py_spy,
                    keep_dir=args.keep_dir, unsandboxed=args.unsandboxed)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    return run_and_report(config.out, bench(config), render)


if __name__ == "__main__":
    sys.exit(main())
