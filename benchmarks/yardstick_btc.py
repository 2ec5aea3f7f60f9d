"""The Bitcoin yardstick: heights reconciled by hand against the node, with no Temporal,
no batch records, no findings table and no per-height Python comparison. Plain asyncio +
aiohttp + asyncpg.

It sends the RPCs `BtcReconcileWorkflow` sends, with the worker's settings:

1. for heights lo..hi in chunks of `--batch-calls`: one JSON-RPC batch of `getblockhash`
   and one of `getblockstats` per chunk, at most `--concurrency` HTTP requests in flight
   (the worker's `PIPEWORKS_BTC_RPC_CONCURRENCY` and `_RPC_BATCH_CALLS`); the node's
   figures go into a temp table by COPY, 10,000 heights at a time, while the requests
   go on;
2. one SQL statement compares them with `btc.blocks`, `btc.block_calcs` and the
   transaction rows per block, and counts what differs by the pipeline's categories
   (interfaces.md): missing, stale, partial and duplicate blocks, count and value
   mismatches, our invariants;
3. where our coinbase is not the node's subsidy + fees, the node's block
   (`getblock <hash> 2`, the same batches and concurrency) for its coinbase: an
   under-claim (information) or our coinbase differing from the node's.

    python -m benchmarks.yardstick_btc --dsn postgresql://... --url http://127.0.0.1:PORT/
        --user U --password P --lo 0 --hi 999999 [--concurrency 8] [--batch-calls 25]

prints one JSON object: wall time, requests, findings by category, where the time went.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp
import asyncpg
import orjson

COPY_EVERY = 10_000  # heights per COPY into the temp table
SATS = Decimal(100_000_000)
NODE_COLUMNS = ("height", "hash", "stats_hash", "txs", "ins", "outs", "total_out",
                "totalfee", "subsidy")

# Per height, the figures that differ, by the pipeline's categories (activities/btc/
# compare.py). A height with no block and no calcs is missing and nothing else; one
# whose block or calcs are another block's is stale and nothing else.
COMPARE_SQL = """
WITH tx AS (
    SELECT x.block_hash, count(*) AS rows, count(*) FILTER (WHERE x.fee_sat < 0) AS negative
    FROM btc.transactions x JOIN btc.blocks b ON b.hash = x.block_hash
    WHERE b.is_main AND b.height BETWEEN $1 AND $2
    GROUP BY x.block_hash),
joined AS (
    SELECT n.*, b.hash AS our_hash, coalesce(t.rows, 0) AS tx_rows,
           coalesce(t.negative, 0) AS negative_fees, c.height IS NOT NULL AS has_calcs,
           c.block_hash AS calc_hash, c.tx_count, c.input_count, c.output_count,
           c.total_out_sat, c.total_fee_sat, c.coinbase_out_sat, c.subsidy_sat,
           c.unclaimed_sat,
           (b.hash IS NULL AND c.height IS NULL) AS missing,
           (b.hash IS DISTINCT FROM n.hash AND b.hash IS NOT NULL
            OR n.stats_hash IS DISTINCT FROM n.hash) AS stale
    FROM node_stats n
    LEFT JOIN btc.blocks b ON b.height = n.height AND b.is_main
    LEFT JOIN tx t ON t.block_hash = b.hash
    LEFT JOIN btc.block_calcs c ON c.height = n.height),
checked AS (
    SELECT j.*, NOT missing AND NOT stale AS go_on,
           NOT missing AND NOT stale AND has_calcs AND calc_hash = hash AS figures
    FROM joined j)
SELECT
    count(*) AS heights,
    count(*) FILTER (WHERE missing)
      + count(*) FILTER (WHERE go_on AND our_hash IS NULL)
      + count(*) FILTER (WHERE go_on AND NOT has_calcs) AS missing_block,
    count(*) FILTER (WHERE stale)
      + count(*) FILTER (WHERE go_on AND has_calcs AND calc_hash <> hash) AS stale_block,
    count(*) FILTER (WHERE go_on AND our_hash IS NOT NULL AND tx_rows < txs)
        AS partial_block,
    count(*) FILTER (WHERE go_on AND tx_rows > txs) AS duplicate_block,
    count(*) FILTER (WHERE figures AND tx_count <> txs)
      + count(*) FILTER (WHERE figures AND input_count <> ins)
      + count(*) FILTER (WHERE figures AND output_count <> outs) AS count_mismatch,
    count(*) FILTER (WHERE figures AND total_out_sat <> total_out)
      + count(*) FILTER (WHERE figures AND total_fee_sat IS DISTINCT FROM totalfee)
      + count(*) FILTER (WHERE figures AND subsidy_sat <> subsidy) AS value_mismatch,
    count(*) FILTER (WHERE go_on AND negative_fees > 0)
      + count(*) FILTER (WHERE figures AND coinbase_out_sat > subsidy_sat + total_fee_sat)
      + count(*) FILTER (WHERE figures AND total_fee_sat < 0)
      + count(*) FILTER (WHERE figures AND unclaimed_sat IS DISTINCT FROM
                         subsidy_sat + total_fee_sat - coinbase_out_sat)
        AS invariant_violation,
    array_agg(height ORDER BY height) FILTER (
        WHERE figures AND coinbase_out_sat IS DISTINCT FROM subsidy + totalfee)
        AS coinbase_heights
FROM checked
"""
COINBASE_SQL = """
SELECT n.height, n.hash, n.subsidy + n.totalfee AS claimable, c.coinbase_out_sat
FROM node_stats n JOIN btc.block_calcs c ON c.height = n.height
WHERE n.height = ANY($1::int[]) ORDER BY n.height
"""


@dataclass
class Timers:
    """Seconds summed over the tasks (HTTP overlaps: its sum can exceed the wall time)."""

    http_s: float = 0.0
    parse_s: float = 0.0
    copy_s: float = 0.0
    compare_s: float = 0.0
    coinbase_s: float = 0.0
    requests: int = 0
    calls: int = 0
    rpc_errors: int = 0
    copies: int = 0
    heights_copied: int = 0
    calls_by_method: dict[str, int] = field(default_factory=dict)


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Node:
    """JSON-RPC batches over one aiohttp session, at most `concurrency` in flight."""

    def __init__(self, session: aiohttp.ClientSession, url: str, timers: Timers) -> None:
        self.session = session
        self.url = url
        self.timers = timers

    async def batch(self, method: str, params: Sequence[Sequence[Any]],
                    parse_float: Any = None) -> list[Any]:
        """Results in order; an RPC error in place of a result is None (and counted)."""
        body = orjson.dumps([{"jsonrpc": "1.0", "id": i, "method": method, "params": p}
                             for i, p in enumerate(params)])
        started = time.perf_counter()
        async with self.session.post(self.url, data=body,
                                     headers={"Content-Type": "application/json"}) as resp:
            raw = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{method}: HTTP {resp.status}: {raw[:200]!r}")
        parsed = time.perf_counter()
        replies = (json.loads(raw, parse_float=parse_float) if parse_float
                   else orjson.loads(raw))
        t = self.timers
        t.http_s += parsed - started
        t.parse_s += time.perf_counter() - parsed
        t.requests += 1
        t.calls += len(params)
        t.calls_by_method[method] = t.calls_by_method.get(method, 0) + len(params)
        by_id = {r["id"]: r for r in replies}
        results: list[Any] = []
        for i in range(len(params)):
            reply = by_id.get(i)
            if reply is None or reply.get("error") is not None:
                t.rpc_errors += 1
                results.append(None)
            else:
                results.append(reply["result"])
        return results


async def fetch_stats(node: Node, conn: asyncpg.Connection, lo: int, hi: int,
                      concurrency: int, batch_calls: int) -> None:
    """Step 1: hashes and stats of every height into `node_stats`."""
    chunks = [(start, min(start + batch_calls - 1, hi))
              for start in range(lo, hi + 1, batch_calls)]
    requests: Iterator[tuple[int, str]] = iter(
        (i, method) for i in range(len(chunks)) for method in ("getblockhash", "getblockstats"))
    halves: dict[int, dict[str, list[Any]]] = {}
    rows: list[tuple[Any, ...]] = []
    copies: asyncio.Queue[list[tuple[Any, ...]] | None] = asyncio.Queue()
    timers = node.timers

    async def copier() -> None:
        while (records := await copies.get()) is not None:
            started = time.perf_counter()
            await conn.copy_records_to_table("node_stats", records=records,
                                             columns=NODE_COLUMNS)
            timers.copy_s += time.perf_counter() - started
            timers.copies += 1
            timers.heights_copied += len(records)

    def completed(index: int) -> None:
        got = halves.pop(index)
        start, end = chunks[index]
        for height, block_hash, stats in zip(range(start, end + 1), got["getblockhash"],
                                             got["getblockstats"], strict=True):
            if stats is None:
                rows.append((height, block_hash, None, None, None, None, None, None, None))
            else:
                rows.append((height, block_hash, stats.get("blockhash"), stats["txs"],
                             stats["ins"], stats["outs"], stats["total_out"],
                             stats["totalfee"], stats["subsidy"]))
        if len(rows) >= COPY_EVERY:
            copies.put_nowait(rows.copy())
            rows.clear()

    async def sender() -> None:
        for index, method in requests:
            start, end = chunks[index]
            results = await node.batch(method, [[h] for h in range(start, end + 1)])
            got = halves.setdefault(index, {})
            got[method] = results
            if len(got) == 2:
                completed(index)

    copying = asyncio.create_task(copier())
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(sender())
        if rows:
            copies.put_nowait(rows.copy())
        copies.put_nowait(None)
        await copying
    finally:
        copying.cancel()


def coinbase_sat(block: dict[str, Any] | None) -> int | None:
    if not block or not block.get("tx"):
        return None
    return int(sum((Decimal(out["value"]) for out in block["tx"][0].get("vout", [])),
                   Decimal(0)) * SATS)


async def check_coinbases(node: Node, conn: asyncpg.Connection, heights: list[int],
                          concurrency: int, batch_calls: int) -> dict[str, int]:
    """Step 3: the node's coinbase where ours is not subsidy + fees."""
    if not heights:
        return {}
    rows = await conn.fetch(COINBASE_SQL, heights)
    chunks = [rows[i:i + batch_calls] for i in range(0, len(rows), batch_calls)]
    pending = iter(chunks)
    found = {"underclaim": 0, "value_mismatch": 0, "stale_block": 0}

    async def sender() -> None:
        for chunk in pending:
            blocks = await node.batch("getblock", [[r["hash"], 2] for r in chunk],
                                      parse_float=Decimal)
            for row, block in zip(chunk, blocks, strict=True):
                theirs = coinbase_sat(block)
                if theirs is None:
                    found["stale_block"] += 1
                    continue
                if row["coinbase_out_sat"] != theirs:
                    found["value_mismatch"] += 1
                if theirs < row["claimable"]:
                    found["underclaim"] += 1

    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(sender())
    return found


async def reconcile(args: argparse.Namespace) -> dict[str, Any]:
    timers = Timers()
    auth = {"Authorization": basic_auth(args.user, args.password)}
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    conn = await asyncpg.connect(args.dsn)
    try:
        await conn.execute(
            "CREATE TEMP TABLE node_stats (height int PRIMARY KEY, hash text,"
            " stats_hash text, txs int, ins int, outs int, total_out bigint,"
            " totalfee bigint, subsidy bigint)")
        async with aiohttp.ClientSession(connector=connector, headers=auth) as session:
            node = Node(session, args.url, timers)
            started = time.perf_counter()
            await fetch_stats(node, conn, args.lo, args.hi, args.concurrency,
                              args.batch_calls)
            fetched = time.perf_counter()
            await conn.execute("ANALYZE node_stats")
            row = await conn.fetchrow(COMPARE_SQL, args.lo, args.hi)
            compared = time.perf_counter()
            assert row is not None
            heights = list(row["coinbase_heights"] or [])
            coinbase = await check_coinbases(node, conn, heights, args.concurrency,
                                             args.batch_calls)
            wall = time.perf_counter() - started
            timers.compare_s = compared - fetched
            timers.coinbase_s = time.perf_counter() - compared
    finally:
        await conn.close()
    findings = {k: int(row[k]) for k in ("missing_block", "stale_block", "partial_block",
                                         "duplicate_block", "count_mismatch",
                                         "value_mismatch", "invariant_violation")}
    for category, n in coinbase.items():
        findings[category] = findings.get(category, 0) + n
    return {"wall_s": wall, "fetch_s": fetched - started, "heights": int(row["heights"]),
            "coinbase_checks": len(heights),
            "findings": {k: v for k, v in sorted(findings.items()) if v},
            **asdict(timers)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--url", required=True, help="the node's JSON-RPC URL")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--lo", type=int, required=True)
    parser.add_argument("--hi", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=8,
                        help="HTTP requests in flight (PIPEWORKS_BTC_RPC_CONCURRENCY)")
    parser.add_argument("--batch-calls", type=int, default=25,
                        help="calls per JSON-RPC batch (PIPEWORKS_BTC_RPC_BATCH_CALLS)")
    args = parser.parse_args(argv)
    result = asyncio.run(reconcile(args))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
