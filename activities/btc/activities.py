"""The Bitcoin pipeline's activities: the I/O of ingest and reconciliation. The worker
injects the pool, the node client and the settings; workflows call these by reference
and get small results (heights, counts), never blocks or transactions."""

# No `from __future__ import annotations` here: Temporal's data converter resolves the
# annotations of these dataclasses each time it decodes one.
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from temporalio import activity

from activities.btc.amounts import btc_to_sat
from activities.btc.compare import (
    OURS_SQL,
    HeightVerdict,
    coinbase_findings,
    compare_height,
    ours_of,
)
from activities.btc.concurrency import both
from activities.btc.findings import Finding, record_findings, resolve_unseen
from activities.btc.ingest import checked_blocks, write_batch
from activities.btc.metrics import BtcMetrics
from activities.btc.node import BtcNode
from activities.btc.supply import supply_check
from pipeworks.activity_errors import categorized_errors
from pipeworks.heartbeat import Heartbeater, carried_errors
from pipeworks.http import ErrorTally
from pipeworks.pagination import RpcError


@dataclass
class RangeRequest:
    from_height: int | None
    to_height: int | None
    recheck_depth: int = 0
    reconcile: bool = False  # a reconciliation's default start: last reconciled - recheck


@dataclass
class RangePlan:
    """The heights to cover (lo > hi: none), and what sizes the batches."""

    lo: int
    hi: int
    tip: int
    prune_height: int | None = None
    # From earlier runs' batch history: ms per unit of weight, weight per height.
    ms_per_weight: float | None = None
    weight_per_height: float | None = None
    errors: dict[str, int] = field(default_factory=dict)


@dataclass
class IngestBatch:
    run_id: str
    lo: int
    hi: int


@dataclass
class IngestResult:
    lo: int
    hi: int
    blocks: int
    transactions: int
    merge: dict[str, dict[str, int]]
    errors: dict[str, int] = field(default_factory=dict)


@dataclass
class ReconBatch:
    run_id: str  # the chain's first run id
    lo: int
    hi: int


@dataclass
class ReconResult:
    lo: int
    hi: int
    checked: int  # heights compared (those beyond the tip are not)
    weight: int
    wall_ms: int
    findings: dict[str, int]  # open findings of this batch by category
    new_errors: int  # error findings not open before
    resolved: int
    beyond_tip_from: int | None = None  # the chain got shorter: heights from here
    already_done: bool = False
    errors: dict[str, int] = field(default_factory=dict)


@dataclass
class SupplyRequest:
    run_id: str
    height: int


class BtcActivities:
    def __init__(self, pool: asyncpg.Pool, node: BtcNode, *, network: str,
                 min_confirmations: int, halving_interval: int,
                 metrics: BtcMetrics | None = None) -> None:
        self._pool = pool
        self._node = node
        self._network = network
        self._min_confirmations = min_confirmations
        self._halving = halving_interval
        self._metrics = metrics or BtcMetrics.disabled()

    # -- planning -----------------------------------------------------------------

    @activity.defn(name="btc_plan_range")
    async def plan_range(self, request: RangeRequest) -> RangePlan:
        """Checks the node's chain, then clamps the range to tip - min confirmations."""
        tally = ErrorTally(carried_errors()[0])
        with categorized_errors(tally):
            info = await self._node.chain_info(tally)
            top = info.blocks - self._min_confirmations
            hi = top if request.to_height is None else min(request.to_height, top)
            lo = request.from_height
            async with self._pool.acquire() as conn:
                if lo is None and request.reconcile:
                    last = await conn.fetchval(
                        "SELECT max(hi) FROM btc.recon_batches WHERE network = $1"
                        " AND outcome = 'ok'", self._network)
                    lo = 0 if last is None else max(0, min(last, hi) - request.recheck_depth)
                history = await conn.fetchrow(
                    """SELECT sum(wall_ms) AS ms, sum(weight) AS weight,
                              sum(hi - lo + 1) AS heights
                       FROM (SELECT * FROM btc.recon_batches
                             WHERE network = $1 AND outcome = 'ok'
                             ORDER BY finished_at DESC LIMIT 20) recent""", self._network)
        plan = RangePlan(lo or 0, hi, info.blocks, info.prune_height, errors=tally.counts)
        if history is not None and history["weight"]:
            plan.ms_per_weight = float(history["ms"]) / float(history["weight"])
            plan.weight_per_height = float(history["weight"]) / float(history["heights"])
        return plan

    # -- ingest -------------------------------------------------------------------

    @activity.defn(name="btc_ingest_batch")
    async def ingest_batch(self, batch: IngestBatch) -> IngestResult:
        tally = ErrorTally(carried_errors()[0])
        heights = list(range(batch.lo, batch.hi + 1))
        async with Heartbeater({"lo": batch.lo, "hi": batch.hi}):
            with categorized_errors(tally):
                hashes = await self._node.block_hashes(heights, tally)
                wanted = [h for h in hashes if isinstance(h, str)]
                fetched = await self._node.blocks(wanted, 3, tally)
                by_hash = dict(zip(wanted, fetched, strict=True))
                blocks = checked_blocks(
                    heights, hashes,
                    [by_hash[h] if isinstance(h, str) else h for h in hashes])
                scope = f"heights:{batch.lo}-{batch.hi}"
                async with self._pool.acquire() as conn, conn.transaction():
                    counts = await write_batch(
                        conn, blocks, run_id=batch.run_id, scope=scope,
                        load_id=f"{batch.run_id}/{batch.lo}-{batch.hi}", lo=batch.lo,
                        hi=batch.hi, halving_interval=self._halving)
        self._metrics.heights("ingest", len(heights))
        return IngestResult(batch.lo, batch.hi, len(blocks),
                            sum(len(b.transactions) for b in blocks),
                            {table: c.as_dict() for table, c in counts.items()}, tally.counts)

    # -- reconciliation -----------------------------------------------------------

    @activity.defn(name="btc_reconcile_batch")
    async def reconcile_batch(self, batch: ReconBatch) -> ReconResult:
        """Compares heights lo..hi and records the findings, the resolutions and the
        batch in one transaction. A batch committed before (a retried attempt whose
        worker was lost after the commit) returns what it recorded."""
        tally = ErrorTally(carried_errors()[0])
        started = time.monotonic()
        attempt = activity.info().attempt
        async with Heartbeater({"lo": batch.lo, "hi": batch.hi}):
            try:
                with categorized_errors(tally):
                    return await self._reconcile(batch, tally, started, attempt)
            except Exception:
                await self._record_failed(batch, attempt, started)
                raise

    async def _reconcile(self, batch: ReconBatch, tally: ErrorTally, started: float,
                         attempt: int) -> ReconResult:
        done = await self._committed(batch)
        if done is not None:
            return done
        heights = list(range(batch.lo, batch.hi + 1))
        rpc_started = time.monotonic()
        hashes, stats = await both(self._node.block_hashes(heights, tally),
                                   self._node.block_stats(heights, tally))
        db_started = time.monotonic()
        async with self._pool.acquire() as conn:
            ours = [ours_of(r) for r in await conn.fetch(OURS_SQL, batch.lo, batch.hi)]
        db_ms = time.monotonic() - db_started
        verdicts = [compare_height(o, h, s) for o, h, s in zip(ours, hashes, stats,
                                                                strict=True)]
        findings = [f for v in verdicts for f in v.findings]
        findings += await self._coinbase_checks(ours, hashes, stats, verdicts, tally)
        rpc_ms = time.monotonic() - rpc_started - db_ms
        beyond = [o.height for o, v in zip(ours, verdicts, strict=True) if v.beyond_tip]
        weight = sum(v.weight for v in verdicts)
        write_started = time.monotonic()
        async with self._pool.acquire() as conn, conn.transaction():
            # Serialises a batch's attempts racing one another (a lost worker's).
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))",
                               f"btc-recon:{batch.run_id}:{batch.lo}")
            done = await self._committed(batch, conn)
            if done is not None:
                return done
            new = await record_findings(conn, findings, batch.run_id)
            resolved = await resolve_unseen(conn, batch.lo, batch.hi, findings, beyond,
                                            batch.run_id)
            wall_ms = int((time.monotonic() - started) * 1000)
            db_ms += time.monotonic() - write_started
            await conn.execute(
                """INSERT INTO btc.recon_batches (run_id, lo, hi, weight, attempt, wall_ms,
                       rpc_ms, db_ms, outcome, findings, network)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'ok', $9, $10)
                   ON CONFLICT (run_id, lo, attempt) DO UPDATE SET outcome = 'ok',
                       hi = EXCLUDED.hi, weight = EXCLUDED.weight,
                       wall_ms = EXCLUDED.wall_ms, findings = EXCLUDED.findings""",
                batch.run_id, batch.lo, batch.hi, weight, attempt, wall_ms,
                int(rpc_ms * 1000), int(db_ms * 1000), len(findings), self._network)
        by_category: dict[str, int] = {}
        for f in findings:
            by_category[f.category] = by_category.get(f.category, 0) + 1
        self._metrics.heights("reconcile", len(heights) - len(beyond))
        self._metrics.batch(batch.hi - batch.lo + 1, weight)
        for category, n in by_category.items():
            self._metrics.findings(category, n)
        return ReconResult(batch.lo, batch.hi, len(heights) - len(beyond), weight, wall_ms,
                           by_category, sum(1 for f in new if f.severity == "error"),
                           resolved, min(beyond) if beyond else None, errors=tally.counts)

    async def _coinbase_checks(self, ours: list[Any], hashes: list[str | RpcError],
                               stats: list[Any], verdicts: list[HeightVerdict],
                               tally: ErrorTally) -> list[Finding]:
        """The drill-down: the node's block, only where our coinbase differs from the
        node's subsidy + fees."""
        wanted = [(o, h, s) for o, h, s, v in zip(ours, hashes, stats, verdicts, strict=True)
                  if v.needs_block and isinstance(h, str) and isinstance(s, dict)]
        if not wanted:
            return []
        blocks = await self._node.blocks([h for _, h, _ in wanted], 2, tally)
        found: list[Finding] = []
        for (o, _, s), block in zip(wanted, blocks, strict=True):
            coinbase = None if isinstance(block, RpcError) else _coinbase_sat(block)
            found += coinbase_findings(o.height, o.calcs, s, block, coinbase)
        return found

    async def _committed(self, batch: ReconBatch, conn: Any = None) -> ReconResult | None:
        query = ("SELECT hi, weight, wall_ms, findings FROM btc.recon_batches"
                 " WHERE run_id = $1 AND lo = $2 AND outcome = 'ok'")
        if conn is None:
            row = await self._pool.fetchrow(query, batch.run_id, batch.lo)
        else:
            row = await conn.fetchrow(query, batch.run_id, batch.lo)
        if row is None:
            return None
        async with self._pool.acquire() as c:
            open_rows = await c.fetch(
                """SELECT category, count(*) AS n FROM btc.discrepancies
                   WHERE resolved_at IS NULL AND height BETWEEN $1 AND $2
                     AND "check" <> 'supply' GROUP BY category""", batch.lo, row["hi"])
        return ReconResult(batch.lo, row["hi"], row["hi"] - batch.lo + 1, row["weight"],
                           row["wall_ms"], {r["category"]: r["n"] for r in open_rows}, 0, 0,
                           already_done=True)

    async def _record_failed(self, batch: ReconBatch, attempt: int, started: float) -> None:
        """A failed attempt is a row of the batch history too (best effort: the
        database may be what failed)."""
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            await self._pool.execute(
                """INSERT INTO btc.recon_batches (run_id, lo, hi, weight, attempt, wall_ms,
                       rpc_ms, db_ms, outcome, network)
                   VALUES ($1, $2, $3, 0, $4, $5, 0, 0, 'failed', $6)
                   ON CONFLICT (run_id, lo, attempt) DO NOTHING""",
                batch.run_id, batch.lo, batch.hi, attempt,
                int((time.monotonic() - started) * 1000), self._network)

    # -- the supply check ---------------------------------------------------------

    @activity.defn(name="btc_check_supply")
    async def check_supply(self, request: SupplyRequest) -> dict[str, Any]:
        tally = ErrorTally(carried_errors()[0])
        with categorized_errors(tally):
            return await supply_check(self._pool, self._node, tally, run_id=request.run_id,
                                      height=request.height, network=self._network)


def _coinbase_sat(block: dict[str, Any]) -> int | None:
    txs = block.get("tx")
    if not isinstance(txs, list) or not txs or not isinstance(txs[0], dict):
        return None
    return sum(btc_to_sat(out["value"], f"block {block.get('hash')} coinbase")
               for out in txs[0].get("vout", []))
