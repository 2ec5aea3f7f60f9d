"""Our figures against the node's, one height at a time (interfaces.md, finding
categories). Pure: the node's answers and our rows in, findings out; what needs the
node's block (the coinbase) is asked for by `needs_block` and checked by `coinbase`.

Hashes are compared before any figure: at a height where our block is not the node's,
every figure would differ, and the one finding is the stale block."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from activities.btc.findings import Finding
from activities.btc.node import is_beyond_tip, is_pruned
from pipeworks.pagination import RpcError

# (our calcs column, getblockstats field, category)
_FIGURES = (("tx_count", "txs", "count_mismatch"), ("input_count", "ins", "count_mismatch"),
            ("output_count", "outs", "count_mismatch"),
            ("total_out_sat", "total_out", "value_mismatch"),
            ("total_fee_sat", "totalfee", "value_mismatch"),
            ("subsidy_sat", "subsidy", "value_mismatch"))


@dataclass
class Ours:
    """What we hold at one height (one row of `OURS_SQL`)."""

    height: int
    main_blocks: int
    block_hash: str | None
    tx_rows: int
    negative_fees: int
    calcs: dict[str, Any] | None  # the btc.block_calcs row, None when absent


OURS_SQL = """
SELECT h.height,
       coalesce(m.main_blocks, 0) AS main_blocks, m.block_hash,
       coalesce(t.tx_rows, 0) AS tx_rows, coalesce(t.negative_fees, 0) AS negative_fees,
       c.height IS NOT NULL AS has_calcs, c.block_hash AS calc_hash, c.tx_count,
       c.input_count, c.output_count, c.total_out_sat, c.total_fee_sat, c.coinbase_out_sat,
       c.subsidy_sat, c.unclaimed_sat
FROM generate_series($1::int, $2::int) AS h(height)
LEFT JOIN LATERAL (SELECT count(*)::int AS main_blocks, min(b.hash) AS block_hash
                   FROM btc.blocks b WHERE b.height = h.height AND b.is_main) m ON true
LEFT JOIN LATERAL (SELECT count(*)::int AS tx_rows,
                          count(*) FILTER (WHERE x.fee_sat < 0)::int AS negative_fees
                   FROM btc.transactions x WHERE x.block_hash = m.block_hash) t ON true
LEFT JOIN btc.block_calcs c ON c.height = h.height
ORDER BY h.height
"""


def ours_of(row: Any) -> Ours:
    calcs = None
    if row["has_calcs"]:
        calcs = {k: row[k] for k in ("tx_count", "input_count", "output_count",
                                     "total_out_sat", "total_fee_sat", "coinbase_out_sat",
                                     "subsidy_sat", "unclaimed_sat")}
        calcs["block_hash"] = row["calc_hash"]
    return Ours(row["height"], row["main_blocks"], row["block_hash"], row["tx_rows"],
                row["negative_fees"], calcs)


@dataclass
class HeightVerdict:
    findings: list[Finding]
    beyond_tip: bool = False
    # The node's block is needed for the coinbase (our coinbase differs from subsidy +
    # the node's fees: an under-claim, or our mistake).
    needs_block: bool = False
    weight: int = 0  # the node's transaction count: what this height cost to check


def compare_height(ours: Ours, node_hash: str | RpcError, stats: dict[str, Any] | RpcError
                   ) -> HeightVerdict:
    h = ours.height
    if isinstance(node_hash, RpcError):
        if is_beyond_tip(node_hash):
            return HeightVerdict([], beyond_tip=True)
        return HeightVerdict([Finding(h, "block", "hash", "unverifiable",
                                      detail={"node": str(node_hash)})])
    if isinstance(stats, RpcError):
        if is_beyond_tip(stats):
            return HeightVerdict([], beyond_tip=True)
        category = "unverifiable" if is_pruned(stats) else "stale_block"
        return HeightVerdict([Finding(h, "stats", "block", category,
                                      detail={"node": str(stats), "hash": node_hash})])
    weight = int(stats.get("txs", 1))
    found: list[Finding] = []
    if ours.main_blocks == 0 and ours.calcs is None:
        return HeightVerdict([Finding(h, "block", "hash", "missing_block",
                                      detail={"node_hash": node_hash})], weight=weight)
    if ours.main_blocks > 1:
        found.append(Finding(h, "block", "main_rows", "duplicate_block", ours.main_blocks, 1))
    if ours.block_hash is not None and ours.block_hash != node_hash:
        found.append(Finding(h, "block", "hash", "stale_block",
                             detail={"ours": ours.block_hash, "node": node_hash}))
        return HeightVerdict(found, weight=weight)
    if ours.block_hash is None:
        found.append(Finding(h, "block", "hash", "missing_block",
                             detail={"node_hash": node_hash, "calcs": "present"}))
    if stats.get("blockhash") not in (None, node_hash):
        # The tip moved between the two calls: the next run sees it settled.
        return HeightVerdict([Finding(h, "stats", "blockhash", "stale_block",
                                      detail={"hash": node_hash,
                                              "stats": stats.get("blockhash")})],
                             weight=weight)
    txs = int(stats["txs"])
    if ours.block_hash is not None and ours.tx_rows < txs:
        found.append(Finding(h, "transactions", "rows", "partial_block", ours.tx_rows, txs))
    elif ours.tx_rows > txs:
        found.append(Finding(h, "transactions", "rows", "duplicate_block", ours.tx_rows, txs))
    if ours.negative_fees:
        found.append(Finding(h, "invariant", "fee_sat", "invariant_violation",
                             -ours.negative_fees, 0,
                             {"transactions_with_negative_fee": ours.negative_fees}))
    calcs = ours.calcs
    if calcs is None:
        found.append(Finding(h, "calcs", "row", "missing_block", detail={"hash": node_hash}))
        return HeightVerdict(found, weight=weight)
    if calcs["block_hash"] != node_hash:
        found.append(Finding(h, "calcs", "block_hash", "stale_block",
                             detail={"ours": calcs["block_hash"], "node": node_hash}))
        return HeightVerdict(found, weight=weight)
    for column, stat, category in _FIGURES:
        if stat in stats and calcs[column] != stats[stat]:
            found.append(Finding(h, "stats", column, category, calcs[column], stats[stat]))
    found.extend(_invariants(h, calcs))
    subsidy, fee = int(stats["subsidy"]), int(stats["totalfee"])
    needs_block = calcs["coinbase_out_sat"] != subsidy + fee
    return HeightVerdict(found, needs_block=needs_block, weight=weight)


def _invariants(h: int, calcs: dict[str, Any]) -> list[Finding]:
    """Our own rows must agree with one another."""
    found = []
    coinbase, subsidy, fee = (calcs["coinbase_out_sat"], calcs["subsidy_sat"],
                              calcs["total_fee_sat"])
    if coinbase is not None and fee is not None and coinbase > subsidy + fee:
        found.append(Finding(h, "invariant", "coinbase_out_sat", "invariant_violation",
                             coinbase, subsidy + fee, {"rule": "coinbase <= subsidy + fees"}))
    if fee is not None and fee < 0:
        found.append(Finding(h, "invariant", "total_fee_sat", "invariant_violation", fee, 0,
                             {"rule": "fees >= 0"}))
    expected = (subsidy + fee - coinbase) if None not in (coinbase, fee) else None
    if calcs["unclaimed_sat"] != expected:
        found.append(Finding(h, "invariant", "unclaimed_sat", "invariant_violation",
                             calcs["unclaimed_sat"], expected,
                             {"rule": "unclaimed = subsidy + fees - coinbase"}))
    return found


def coinbase_findings(h: int, calcs: dict[str, Any], stats: dict[str, Any],
                      block: dict[str, Any] | RpcError, node_coinbase: int | None
                      ) -> list[Finding]:
    """With the node's block: our coinbase against the node's (value_mismatch), and the
    node's coinbase against subsidy + fees (an under-claim is information)."""
    if isinstance(block, RpcError) or node_coinbase is None:
        category = ("unverifiable" if isinstance(block, RpcError) and is_pruned(block)
                    else "stale_block")
        return [Finding(h, "block", "coinbase", category, detail={"node": str(block)})]
    found = []
    ours = calcs["coinbase_out_sat"]
    if ours != node_coinbase:
        found.append(Finding(h, "block", "coinbase_out_sat", "value_mismatch", ours,
                             node_coinbase))
    claimable = int(stats["subsidy"]) + int(stats["totalfee"])
    if node_coinbase < claimable:
        found.append(Finding(h, "coinbase", "unclaimed_sat", "underclaim",
                             calcs["unclaimed_sat"], claimable - node_coinbase,
                             {"coinbase": node_coinbase, "claimable": claimable}))
    return found
