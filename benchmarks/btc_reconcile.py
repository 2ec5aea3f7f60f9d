"""The Bitcoin benchmark (issue 12): `BtcReconcileWorkflow` over up to 1,000,000
synthetic heights against a plain asyncio yardstick that sends the same RPCs.

    python -m benchmarks.btc_reconcile [--heights 1000000 | --quick] [--max-txs 2]
        [--tx-growth 10] [--concurrency 8] [--batch-calls 25] [--rss-mark N]
        [--py-spy DIR] [--keep-dir] [--out benchmarks/results/<timestamp>-btc.json]

Starts an embedded Postgres, a Temporal dev server, the node emulator as its own process
(`python -m devstack.btc --chain synthetic-aggregate:N --latency-us-per-tx 0`: its own
core, its own GIL) and a pipeworks worker serving only the Bitcoin pipeline
(`PIPEWORKS_PIPELINES=btc_reconcile`, min confirmations 0) as a separate process, all
in a temp directory. Then:

0. our btc tables are seeded for heights 0..N-1 as a correct ingest would leave them
   (`tests/btc/seeding.py`, from the same synthetic chain, in parallel processes), then
   vacuumed, analysed and checkpointed;
1. yardstick, `benchmarks/yardstick_btc.py` (its own process): `getblockhash` +
   `getblockstats` of every height in JSON-RPC batches of the worker's size with the
   worker's concurrency, COPY into a temp table, one SQL comparison, and `getblock`
   where a coinbase needs a look; timed;
2. pipeworks: after a warm-up run of 1,000 heights (then its findings and batch records
   are emptied), `BtcReconcileWorkflow` from 0 to N-1 with its defaults (batches,
   window, checkpoints); timed; the worker's RSS sampled every 100 ms and read when the
   cursor passes `--rss-mark` and at the end; every run of the continue-as-new chain's
   history length; the batch sizes from `btc.recon_batches`.

Both must report the same findings (the synthetic chain's under-claimed coinbases,
information; no error). Prints tables and writes every number as JSON. Everything it
started is stopped at the end, also on failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.table import Table
from temporalio.client import WorkflowHandle, WorkflowHistory

from benchmarks import history as history_analysis
from benchmarks import sampling
from benchmarks.common import stop_process
from benchmarks.run import (
    PIPELINE_TABLES,
    RESULTS,
    ROOT,
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
from benchmarks.yardstick_btc import basic_auth

FULL_HEIGHTS = 1_000_000
QUICK_HEIGHTS = 100_000
RSS_MARK = 100_000
NODE_USER, NODE_PASSWORD = "bench", "bench-node"  # the emulator's, local
NETWORK = "main"
WORKFLOW_ID = f"btc-reconcile-{NETWORK}"
WARM_UP_HEIGHTS = 1_000
SEED_CHUNK = 25_000           # heights per seed_from_chain call
PROGRESS_EVERY_S = 1.0
NODE_START_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 4 * 3600.0
BTC_RUN_TABLES = ("btc.discrepancies", "btc.recon_batches")
# The targets.
TARGET_RATIO = 1.3
TARGET_RSS_GROWTH = 1.15      # "flat": the peak at the end within ~15% of the peak at the mark
TARGET_MAX_HISTORY_EVENTS = 10_000


@dataclass(frozen=True)
class BtcConfig:
    heights: int
    rss_mark: int                 # heights reconciled when the first RSS reading is taken
    max_txs: int                  # the synthetic chain's block sizes (--max-txs)
    tx_growth: int
    concurrency: int              # PIPEWORKS_BTC_RPC_CONCURRENCY, and the yardstick's
    batch_calls: int              # PIPEWORKS_BTC_RPC_BATCH_CALLS, and the yardstick's
    out: Path
    seed_processes: int = 2
    py_spy: Path | None = None
    keep_dir: bool = False
    skip_yardstick: bool = False
    unsandboxed: bool = False
    seed: int = 7

    @property
    def chain(self) -> str:
        return f"synthetic-aggregate:{self.heights}"

    def as_dict(self) -> dict[str, Any]:
        return {"heights": self.heights, "from_height": 0, "to_height": self.heights - 1,
                "rss_mark_heights": self.rss_mark, "chain": self.chain, "seed": self.seed,
                "max_txs": self.max_txs, "tx_growth": self.tx_growth,
                "network": NETWORK, "min_confirmations": 0,
                "rpc_concurrency": self.concurrency, "rpc_batch_calls": self.batch_calls,
                "node": f"python -m devstack.btc --chain {self.chain} --max-txs "
                        f"{self.max_txs} --tx-growth {self.tx_growth} "
                        "--latency-us-per-tx 0 (its own process)",
                "workflow_input": self.workflow_input(),
                "worker": "python -m " + ("benchmarks.bench_worker --unsandboxed"
                                          if self.unsandboxed else "starters.cli worker"),
                "seed_processes": self.seed_processes,
                "postgres": "embedded, durable (fsync on)"}

    def workflow_input(self) -> dict[str, Any]:
        """BtcReconcileWorkflow's defaults otherwise: batches, window, checkpoints."""
        return {"network": NETWORK, "from_height": 0, "to_height": self.heights - 1}


# -- the stack -------------------------------------------------------------------------


class BtcStack(BenchStack):
    """The shared stack (`stack.py`) with the node emulator as its own process and a
    worker serving the Bitcoin pipeline only."""

    def __init__(self, config: BtcConfig) -> None:
        super().__init__(name="btc", pipelines="btc_reconcile", unsandboxed=config.unsandboxed,
                         keep_dir=config.keep_dir)
        self.config = config
        self.node: asyncio.subprocess.Process | None = None
        self.node_url = ""
        self.node_log = self.dir / "node.log"

    async def start_upstream(self) -> None:
        c = self.config
        out = self.dir / "node.out"
        self.node = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "devstack.btc", "--port", "0", "--chain", c.chain,
            "--seed", str(c.seed), "--max-txs", str(c.max_txs), "--tx-growth",
            str(c.tx_growth), "--network", NETWORK, "--user", NODE_USER, "--password",
            NODE_PASSWORD, "--latency-us-per-tx", "0", cwd=ROOT, stdin=subprocess.DEVNULL,
            stdout=out.open("wb"), stderr=self.node_log.open("wb"), start_new_session=True)
        deadline = time.monotonic() + NODE_START_TIMEOUT_S
        while not self.node_url:
            text = out.read_text(errors="replace") if out.exists() else ""
            if "listening on " in text:
                self.node_url = text.split("listening on ", 1)[1].split()[0]
                break
            if self.node.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError("the node emulator did not start:\n"
                                   + self.node_log.read_text(errors="replace")[-2000:])
            await asyncio.sleep(0.1)
        self.sampler.watch("node", self.node.pid)

    async def stop_upstream(self) -> None:
        node, self.node = self.node, None
        if node is not None:
            await stop_process(node, 10)

    def kill_upstream(self) -> None:
        if self.node is not None and self.node.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.node.kill()

    def worker_env(self) -> dict[str, str]:
        c = self.config
        return {"PIPEWORKS_BTC_RPC_URL": self.node_url,
                "PIPEWORKS_BTC_RPC_USER": NODE_USER, "PIPEWORKS_BTC_RPC_PASSWORD": NODE_PASSWORD,
                "PIPEWORKS_BTC_NETWORK": NETWORK, "PIPEWORKS_BTC_MIN_CONFIRMATIONS": "0",
                "PIPEWORKS_BTC_RPC_CONCURRENCY": str(c.concurrency),
                "PIPEWORKS_BTC_RPC_BATCH_CALLS": str(c.batch_calls)}


# -- seeding ---------------------------------------------------------------------------


async def seed_range(dsn: str, config: BtcConfig, lo: int, hi: int) -> int:
    """In a seeding process: heights lo..hi in chunks; returns the under-claims."""
    from devstack.btc import load_chain
    from tests.btc.seeding import seed_from_chain

    chain = load_chain(config.chain, seed=config.seed, network=NETWORK,
                       max_txs=config.max_txs, tx_growth=config.tx_growth)
    underclaims = 0
    async with connection(dsn) as conn:
        for start in range(lo, hi + 1, SEED_CHUNK):
            end = min(start + SEED_CHUNK - 1, hi)
            async with conn.transaction():
                underclaims += await seed_from_chain(conn, chain, start, end)  # type: ignore[arg-type]
    return underclaims


async def seed(stack: BtcStack) -> dict[str, Any]:
    """Our tables for heights 0..N-1, by `--seed-processes` processes of this module."""
    config = stack.config
    n = config.heights
    parts = max(1, min(config.seed_processes, n // SEED_CHUNK or 1))
    bounds = [(i * n // parts, (i + 1) * n // parts - 1) for i in range(parts)]
    started = time.perf_counter()
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.btc_reconcile", "--seed-range", str(lo), str(hi),
        "--seed-dsn", stack.dsn, "--heights", str(n), "--max-txs", str(config.max_txs),
        "--tx-growth", str(config.tx_growth), cwd=ROOT, stdin=subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        for lo, hi in bounds]
    try:
        outputs = await asyncio.gather(*(p.communicate() for p in procs))
    finally:
        for proc in procs:
            await stop_process(proc, 5)
    underclaims = 0
    for proc, (out, err) in zip(procs, outputs, strict=True):
        if proc.returncode != 0:
            raise RuntimeError(f"seeding failed ({proc.returncode}):\n{err.decode()[-3000:]}")
        underclaims += int(json.loads(out.decode().strip().splitlines()[-1])["underclaims"])
    seeded = time.perf_counter() - started
    async with connection(stack.dsn) as conn:
        await conn.execute("VACUUM (ANALYZE) btc.blocks, btc.transactions, btc.block_calcs")
        await conn.execute("CHECKPOINT")
        counts = {t: int(await conn.fetchval(f"SELECT count(*) FROM {t}"))
                  for t in ("btc.blocks", "btc.transactions", "btc.block_calcs")}
        sizes = {t: int(await conn.fetchval("SELECT pg_total_relation_size($1)", t))
                 for t in counts}
    return {"seconds": seeded, "vacuum_checkpoint_s": time.perf_counter() - started - seeded,
            "processes": parts, "underclaims": underclaims, "rows": counts,
            "table_mb": {t: round(b / 2**20, 1) for t, b in sizes.items()}}


async def check_node_matches_seed(stack: BtcStack) -> None:
    """The node serves the chain the tables were seeded from (same hashes and figures)."""
    import aiohttp

    from devstack.btc import load_chain

    config = stack.config
    chain = load_chain(config.chain, seed=config.seed, network=NETWORK,
                       max_txs=config.max_txs, tx_growth=config.tx_growth)
    probe = sorted({0, 1, config.heights // 2, config.heights - 1})
    body = [{"jsonrpc": "1.0", "id": i, "method": "getblockstats", "params": [h]}
            for i, h in enumerate(probe)]
    auth = {"Authorization": basic_auth(NODE_USER, NODE_PASSWORD)}
    async with aiohttp.ClientSession(headers=auth) as s, s.post(stack.node_url, json=body) as resp:
        replies = await resp.json()
    for height, reply in zip(probe, replies, strict=True):
        ours = chain.stats(height)
        theirs = reply["result"]
        if any(ours[k] != theirs[k] for k in ("blockhash", "txs", "totalfee", "subsidy")):
            raise RuntimeError(f"the node's block {height} is not the seeded one")


# -- the steps -------------------------------------------------------------------------


async def run_yardstick(stack: BtcStack) -> dict[str, Any]:
    config = stack.config
    result, usage = await run_measured(stack.sampler, "yardstick", "benchmarks.yardstick_btc", [
        "--dsn", stack.dsn, "--url", stack.node_url, "--user", NODE_USER,
        "--password", NODE_PASSWORD, "--lo", "0", "--hi", str(config.heights - 1),
        "--concurrency", str(config.concurrency), "--batch-calls", str(config.batch_calls)])
    result.update(heights_per_s=config.heights / result["wall_s"], **usage)
    return result


async def empty_run_tables(dsn: str) -> None:
    """Findings, batch records and the kernel's run bookkeeping (not our seeded rows)."""
    async with connection(dsn) as conn:
        await conn.execute("TRUNCATE " + ", ".join([*BTC_RUN_TABLES, *PIPELINE_TABLES]))


async def warm_up(stack: BtcStack) -> float:
    """A short reconciliation, so that the timed one meets a worker that has run each
    workflow and activity once; then its findings and batch records are emptied."""
    started = time.perf_counter()
    top = min(WARM_UP_HEIGHTS, stack.config.heights) - 1
    handle = await stack.client.start_workflow(
        "BtcReconcileWorkflow", {"network": NETWORK, "from_height": 0, "to_height": top},
        id="bench-btc-warm-up", task_queue=stack.task_queue)
    result = await asyncio.wait_for(handle.result(), timeout=600)
    if result.get("status") != "completed":
        raise RuntimeError(f"the warm-up did not complete: {result}")
    await empty_run_tables(stack.dsn)
    return time.perf_counter() - started


def _rss_now_mb(stack: BtcStack) -> float | None:
    samples = stack.sampler.rss.get("worker")
    return samples[-1][1] / 2**20 if samples else None


async def watch_progress(stack: BtcStack, since: float, stop: asyncio.Event,
                         seen: dict[str, Any]) -> None:
    """Every second: the run's cursor (the chain's latest run answers), the worker's RSS;
    the RSS peak so far when the cursor first passes the mark."""
    handle = stack.client.get_workflow_handle(WORKFLOW_ID)
    mark = stack.config.rss_mark
    trace: list[dict[str, Any]] = seen.setdefault("trace", [])
    latencies: list[float] = seen.setdefault("query_ms", [])
    while not stop.is_set():
        asked = time.perf_counter()
        with contextlib.suppress(Exception):
            progress = await handle.query("progress")
            latencies.append(1000 * (time.perf_counter() - asked))
            cursor = progress.get("cursor_height")
            now = time.monotonic()
            if isinstance(cursor, int):
                trace.append({"s": round(now - since, 1), "cursor": cursor,
                              "batch_size": progress.get("batch_size"),
                              "worker_rss_mb": _rss_now_mb(stack)})
                if "rss_at_mark" not in seen and cursor + 1 >= mark:
                    seen["rss_at_mark"] = {
                        "cursor": cursor, "s": now - since,
                        "peak_mb": stack.sampler.peak_rss_mb("worker", since, now),
                        "now_mb": _rss_now_mb(stack)}
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PROGRESS_EVERY_S)


async def chain_histories(stack: BtcStack, handle: WorkflowHandle[Any, Any]
                          ) -> list[WorkflowHistory]:
    """Every run of the continue-as-new chain, first to last."""
    histories = []
    run_id = handle.first_execution_run_id or handle.result_run_id
    while run_id:
        history = await stack.client.get_workflow_handle(
            WORKFLOW_ID, run_id=run_id).fetch_history()
        histories.append(history)
        last = history.events[-1] if history.events else None
        run_id = (last.workflow_execution_continued_as_new_event_attributes
                  .new_execution_run_id if last is not None and last.HasField(
                      "workflow_execution_continued_as_new_event_attributes") else None)
    return histories


async def batch_records(dsn: str) -> dict[str, Any]:
    async with connection(dsn) as conn:
        rows = await conn.fetch(
            "SELECT lo, hi, weight, wall_ms, rpc_ms, db_ms, attempt FROM btc.recon_batches"
            " WHERE outcome = 'ok' ORDER BY lo")
        failed = int(await conn.fetchval(
            "SELECT count(*) FROM btc.recon_batches WHERE outcome = 'failed'"))
        open_findings = await conn.fetch(
            "SELECT category, severity, count(*) AS n FROM btc.discrepancies"
            " WHERE resolved_at IS NULL GROUP BY 1, 2 ORDER BY 1")
    sizes = [r["hi"] - r["lo"] + 1 for r in rows]
    covered = sum(sizes)
    contiguous = all(a["hi"] + 1 == b["lo"] for a, b in itertools.pairwise(rows))
    hist: dict[int, int] = {}
    for size in sizes:
        hist[size] = hist.get(size, 0) + 1
    return {
        "batches": len(rows), "failed_attempts": failed, "heights_covered": covered,
        "each_height_once": contiguous and bool(rows) and rows[0]["lo"] == 0,
        "sizes_in_order": sizes, "distinct_sizes": len(hist),
        "size_min": min(sizes, default=None), "size_max": max(sizes, default=None),
        "size_median": statistics.median(sizes) if sizes else None,
        "most_common_sizes": sorted(hist.items(), key=lambda kv: -kv[1])[:8],
        "weight_per_height": sum(r["weight"] for r in rows) / covered if covered else None,
        "wall_ms_sum": sum(r["wall_ms"] for r in rows),
        "rpc_ms_sum": sum(r["rpc_ms"] for r in rows),
        "db_ms_sum": sum(r["db_ms"] for r in rows),
        "mean_batch_wall_s": (statistics.fmean(r["wall_ms"] for r in rows) / 1000
                              if rows else None),
        "open_findings": {f"{r['category']} ({r['severity']})": r["n"] for r in open_findings},
    }


async def run_pipeworks(stack: BtcStack) -> dict[str, Any]:
    config = stack.config
    assert stack.worker is not None
    pids = [p.pid for p in stack.worker_processes()]
    spying: contextlib.AbstractAsyncContextManager[list[Path]] = (
        sampling.sampled(pids, config.py_spy, "btc") if config.py_spy
        else contextlib.nullcontext([]))
    seen: dict[str, Any] = {}
    async with spying as spy_files:
        phase = begin(stack.sampler)
        started = time.perf_counter()
        handle: WorkflowHandle[Any, Any] = await stack.client.start_workflow(
            "BtcReconcileWorkflow", config.workflow_input(), id=WORKFLOW_ID,
            task_queue=stack.task_queue)
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_progress(stack, phase.started, stop, seen))
        try:
            result = await asyncio.wait_for(handle.result(), timeout=RUN_TIMEOUT_S)
        finally:
            stop.set()
            await watcher
        wall = time.perf_counter() - started
        usage = finish(stack.sampler, phase)
    if not isinstance(result, dict) or result.get("status") != "completed":
        raise RuntimeError(f"the reconciliation did not complete: {result}")
    histories = await chain_histories(stack, handle)
    lengths = [len(h.events) for h in histories]
    profile = history_analysis.analyse(histories)
    queries = seen.get("query_ms", [])
    trace = seen.get("trace", [])
    return {
        "workflow_id": WORKFLOW_ID, "wall_s": wall,
        "heights_per_s": config.heights / wall,
        "status": result["status"], "message": result.get("message"),
        "findings": result.get("findings") or {}, "batch_size_at_end": result.get("batch_size"),
        "errors": result.get("errors"),
        "runs": len(histories), "history_events": lengths, "largest_history": max(lengths),
        "history_bytes": history_analysis.size(histories)["max_bytes"],
        "activities": profile["activities"], "workflow_tasks": profile["workflow_tasks"],
        "worker_peak_rss_mb": stack.sampler.peak_rss_mb("worker", usage["since"],
                                                        usage["until"]),
        "worker_rss_at_end_mb": _rss_now_mb(stack),
        "rss_at_mark": seen.get("rss_at_mark"),
        "node_peak_rss_mb": stack.sampler.peak_rss_mb("node", usage["since"], usage["until"]),
        "cpu_s": usage["cpu_s"], "cpu_total_s": usage["cpu_total_s"],
        "progress_query_ms": {"n": len(queries),
                              "p50": statistics.median(queries) if queries else None,
                              "max": max(queries, default=None)},
        # A point every ~10 s: heights done against the worker's RSS.
        "trace": trace[::10] + trace[-1:],
        **({"worker_cpu_by_category_s": sampling.categorised(spy_files),
            "worker_top_frames_s": sampling.top_frames(spy_files)} if spy_files else {}),
    }


# -- the benchmark ---------------------------------------------------------------------


async def bench(config: BtcConfig) -> dict[str, Any]:
    report: dict[str, Any] = {
        "benchmark": "pipeworks BtcReconcileWorkflow vs an asyncio yardstick (issue 12)",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config.as_dict(), "machine": machine(), "versions": versions(),
        "code": git_state(), "load_average_at_start": os.getloadavg(),
    }
    async with running(BtcStack(config)) as stack:
        async with connection(stack.dsn) as conn:
            report["versions"]["postgres"] = str(await conn.fetchval("SHOW server_version"))
        console.print(f"node {stack.node_url} ({config.chain}, max {config.max_txs} txs); "
                      f"[bold]0.[/] seeding {config.heights:,} heights ...")
        report["seed"] = await seed(stack)
        await check_node_matches_seed(stack)
        s = report["seed"]
        console.print(f"   {s['seconds']:.1f} s (+{s['vacuum_checkpoint_s']:.1f} s vacuum, "
                      f"checkpoint), rows {s['rows']}, {s['underclaims']:,} under-claims")
        if not config.skip_yardstick:
            console.print(f"[bold]1.[/] yardstick: asyncio + aiohttp + asyncpg, "
                          f"{config.concurrency} requests in flight, {config.batch_calls} "
                          "calls per batch ...")
            report["yardstick"] = y = await run_yardstick(stack)
            console.print(f"   {y['wall_s']:.1f} s ({y['heights_per_s']:,.0f} heights/s), "
                          f"{y['requests']:,} requests, findings {y['findings']}")
        await stack.start_worker()
        console.print("worker up; warm-up (1,000 heights) ...")
        report["warm_up_s"] = await warm_up(stack)
        console.print("[bold]2.[/] pipeworks: BtcReconcileWorkflow 0.."
                      f"{config.heights - 1:,} ...")
        report["pipeworks"] = pw = await run_pipeworks(stack)
        pw["batches"] = await batch_records(stack.dsn)
        console.print(f"   {pw['wall_s']:.1f} s ({pw['heights_per_s']:,.0f} heights/s), "
                      f"{pw['runs']} runs, findings {pw['findings']}")
        if "yardstick" in report:
            report["ratio"] = pw["wall_s"] / report["yardstick"]["wall_s"]
        await stack.stop_worker()
    report["same_findings"] = same_findings(report)
    report["targets"] = targets(config, report)
    report["load_average_at_end"] = os.getloadavg()
    report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return report


def same_findings(report: dict[str, Any]) -> dict[str, Any]:
    expected = report["seed"]["underclaims"]
    pw = report["pipeworks"]["findings"]
    out: dict[str, Any] = {"seeded_underclaims": expected, "pipeworks": pw,
                           "pipeworks_as_seeded": pw == ({"underclaim": expected}
                                                         if expected else {})}
    if "yardstick" in report:
        out["yardstick"] = report["yardstick"]["findings"]
        out["equal"] = out["yardstick"] == pw
    return out


def targets(config: BtcConfig, report: dict[str, Any]) -> list[dict[str, Any]]:
    pw = report["pipeworks"]
    note = "" if config.heights >= FULL_HEIGHTS else f" (this run: {config.heights:,} heights)"
    rows: list[dict[str, Any]] = []
    if "ratio" in report:
        y = report["yardstick"]
        rows.append({"target": f"1,000,000 heights within {TARGET_RATIO}x of the yardstick"
                               + note,
                     "measured": f"{report['ratio']:.2f}x ({pw['wall_s']:.1f} s vs "
                                 f"{y['wall_s']:.1f} s)",
                     "met": report["ratio"] <= TARGET_RATIO})
    mark, end = pw.get("rss_at_mark"), pw["worker_peak_rss_mb"]
    if mark and mark.get("peak_mb") and end:
        growth = end / mark["peak_mb"]
        rows.append({"target": f"worker RSS flat from {config.rss_mark:,} to "
                               f"{config.heights:,} heights (peak within "
                               f"{100 * (TARGET_RSS_GROWTH - 1):.0f}%)",
                     "measured": f"{mark['peak_mb']:.0f} MB -> {end:.0f} MB ({growth:.2f}x)",
                     "met": growth <= TARGET_RSS_GROWTH})
    rows.append({"target": f"largest history < {TARGET_MAX_HISTORY_EVENTS:,} events",
                 "measured": f"{pw['largest_history']:,} ({pw['runs']} runs)",
                 "met": pw["largest_history"] < TARGET_MAX_HISTORY_EVENTS})
    same = report["same_findings"]
    rows.append({"target": "the same findings (the chain's under-claims, no error)",
                 "measured": f"pipeworks {same['pipeworks']}, yardstick "
                             f"{same.get('yardstick', '-')}, seeded "
                             f"{same['seeded_underclaims']:,} under-claims",
                 "met": same["pipeworks_as_seeded"] and same.get("equal", True)})
    return rows


# -- output ----------------------------------------------------------------------------


def render(report: dict[str, Any]) -> None:
    c, pw, y = report["config"], report["pipeworks"], report.get("yardstick")
    title = (f"Bitcoin reconciliation: {c['heights']:,} heights ({c['chain']}, max "
             f"{c['max_txs']} txs), {c['rpc_concurrency']} requests in flight x "
             f"{c['rpc_batch_calls']} calls, {report['machine']['cpu_count']} CPUs")
    main = Table(title=title, title_justify="left")
    for col in ("run", "wall s", "heights/s", "pipeworks ÷ this", "findings",
                "CPU s (all procs)", "peak RSS MB"):
        main.add_column(col, justify="left" if col == "run" else "right")
    main.add_row("pipeworks (BtcReconcileWorkflow)", _f(pw["wall_s"], 1),
                 f"{pw['heights_per_s']:,.0f}", "1.00", _findings(pw["findings"]),
                 _f(pw["cpu_total_s"], 1), _f(pw["worker_peak_rss_mb"], 0))
    if y:
        main.add_row("yardstick (asyncio+aiohttp+asyncpg, SQL compare)", _f(y["wall_s"], 1),
                     f"{y['heights_per_s']:,.0f}", _f(pw["wall_s"] / y["wall_s"]),
                     _findings(y["findings"]), _f(y["cpu_total_s"], 1),
                     _f(y["peak_rss_mb"], 0))
    console.print(main)

    details = Table(title="details", title_justify="left", show_header=False)
    details.add_column()
    details.add_column(justify="right")
    s = report["seed"]
    details.add_row("seeding (not timed)", f"{s['seconds']:.1f} s in {s['processes']} "
                    f"processes; rows {s['rows']}; MB {s['table_mb']}")
    mark = pw.get("rss_at_mark") or {}
    details.add_row("worker RSS MB", f"peak {_f(mark.get('peak_mb'), 0)} when the cursor "
                    f"passed {c['rss_mark_heights']:,} (at {_f(mark.get('s'), 0)} s); peak "
                    f"{_f(pw['worker_peak_rss_mb'], 0)} over the run, "
                    f"{_f(pw['worker_rss_at_end_mb'], 0)} at the end; node "
                    f"{_f(pw['node_peak_rss_mb'], 0)}")
    details.add_row("histories", f"{pw['runs']} runs: {pw['history_events']} events; "
                    f"largest {pw['largest_history']:,} ({pw['history_bytes']:,} bytes)")
    b = pw["batches"]
    details.add_row("batches (btc.recon_batches)",
                    f"{b['batches']} ok, {b['failed_attempts']} failed attempts; heights "
                    f"{b['size_min']}..{b['size_max']} (median {b['size_median']}), "
                    f"{b['distinct_sizes']} sizes; first {b['sizes_in_order'][:8]}; "
                    f"each height once: {b['each_height_once']}")
    details.add_row("batch time (sums over batches)",
                    f"wall {b['wall_ms_sum'] / 1000:.1f} s (mean "
                    f"{_f(b['mean_batch_wall_s'], 1)} s per batch), RPC "
                    f"{b['rpc_ms_sum'] / 1000:.1f} s, DB {b['db_ms_sum'] / 1000:.1f} s")
    acts = pw["activities"]
    details.add_row("activities (histories)", ", ".join(
        f"{k.removeprefix('btc_')} {int(v['count'])}x {_f(v['run_s'], 1)} s (queued "
        f"{_f(1000 * v['queue_s'] / max(v['count'], 1), 0)} ms each)"
        for k, v in sorted(acts.items(), key=lambda kv: -kv[1]["run_s"])))
    wft = pw["workflow_tasks"]
    details.add_row("workflow tasks", f"{wft['count']}, {_f(wft['total_s'], 1)} s "
                    f"(mean {_f(wft['mean_ms'], 0)} ms)")
    details.add_row("CPU s by process (pipeworks run)", ", ".join(
        f"{k} {v:.1f}" for k, v in sorted(pw["cpu_s"].items(), key=lambda kv: -kv[1])))
    if y:
        details.add_row("CPU s by process (yardstick run)", ", ".join(
            f"{k} {v:.1f}" for k, v in sorted(y["cpu_s"].items(), key=lambda kv: -kv[1])))
        details.add_row("yardstick", f"fetch {_f(y['fetch_s'], 1)} s (HTTP summed "
                        f"{_f(y['http_s'], 1)} s, COPY {_f(y['copy_s'], 1)} s), compare "
                        f"{_f(y['compare_s'], 1)} s, coinbases {_f(y['coinbase_s'], 1)} s "
                        f"({y['coinbase_checks']:,} blocks); {y['requests']:,} requests, "
                        f"{y['calls']:,} calls")
    console.print(details)
    print_cpu_by_category(pw)
    print_targets(report["targets"])


def _findings(found: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(found.items())) or "none"


# -- command line ----------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.btc_reconcile",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--heights", type=int, default=FULL_HEIGHTS,
                        help=f"heights 0..N-1 (default {FULL_HEIGHTS:,})")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_HEIGHTS:,} heights, to try it (RSS mark at a tenth)")
    parser.add_argument("--rss-mark", type=int, default=None, metavar="HEIGHTS",
                        help=f"read the worker's RSS when the cursor passes this many heights "
                             f"(default {RSS_MARK:,}, or a tenth of --heights when that is "
                             "smaller)")
    parser.add_argument("--max-txs", type=int, default=2,
                        help="the synthetic chain's transactions per block at most, besides "
                             "up to 2 more and the coinbase (default 2: every block's "
                             "transaction rows are seeded)")
    parser.add_argument("--tx-growth", type=int, default=10,
                        help="one more transaction per block every N heights (default 10)")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="HTTP requests to the node in flight, for both "
                             "(PIPEWORKS_BTC_RPC_CONCURRENCY; default 8, the setting's)")
    parser.add_argument("--batch-calls", type=int, default=25,
                        help="calls per JSON-RPC batch, for both "
                             "(PIPEWORKS_BTC_RPC_BATCH_CALLS; default 25, the setting's)")
    parser.add_argument("--seed-processes", type=int, default=2,
                        help="processes seeding the tables (default 2)")
    parser.add_argument("--skip-yardstick", action="store_true")
    parser.add_argument("--py-spy", type=Path, metavar="DIR",
                        help="sample the worker with py-spy during the pipeworks run (raw "
                             "stacks into DIR); CPU seconds by category in the report")
    parser.add_argument("--unsandboxed", action="store_true",
                        help="experiment: the worker without Temporal's workflow sandbox")
    parser.add_argument("--keep-dir", action="store_true",
                        help="keep the temp dir (worker and node logs, Postgres data)")
    parser.add_argument("--out", type=Path,
                        help="JSON file (default benchmarks/results/<timestamp>-btc.json)")
    # A seeding process (started by the benchmark itself).
    parser.add_argument("--seed-range", type=int, nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--seed-dsn", help=argparse.SUPPRESS)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> tuple[BtcConfig, argparse.Namespace]:
    parser = _parser()
    args = parser.parse_args(argv)
    heights = QUICK_HEIGHTS if args.quick else args.heights
    if heights < 2:
        parser.error("--heights must be at least 2")
    if args.concurrency < 1 or args.batch_calls < 1 or args.seed_processes < 1:
        parser.error("--concurrency, --batch-calls and --seed-processes must be at least 1")
    if args.py_spy and sampling.available() is None:
        parser.error("--py-spy: py-spy is not installed (pip install -e '.[bench]')")
    mark = args.rss_mark or min(RSS_MARK, max(1, heights // 10))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    suffix = "-btc-quick" if args.quick else "-btc"
    config = BtcConfig(heights=heights, rss_mark=mark, max_txs=args.max_txs,
                       tx_growth=args.tx_growth, concurrency=args.concurrency,
                       batch_calls=args.batch_calls, seed_processes=args.seed_processes,
                       out=args.out or RESULTS / f"{stamp}{suffix}.json",
                       py_spy=args.py_spy, keep_dir=args.keep_dir,
                       skip_yardstick=args.skip_yardstick, unsandboxed=args.unsandboxed)
    return config, args


def main(argv: Sequence[str] | None = None) -> int:
    config, args = parse_args(argv)
    if args.seed_range:
        lo, hi = args.seed_range
        underclaims = asyncio.run(seed_range(args.seed_dsn, config, lo, hi))
        sys.stdout.write(json.dumps({"underclaims": underclaims}) + "\n")
        return 0
    return run_and_report(config.out, bench(config), render)


if __name__ == "__main__":
    sys.exit(main())
