"""The supply check that ends a reconciliation: Σ subsidy(0..H) of our calcs against the
node's UTXO total at H (`gettxoutsetinfo`), with what never enters the UTXO set
explained from our own rows, not reported: the genesis coinbase, the two BIP30
duplicate coinbases (main), unspendable outputs (OP_RETURN) and unclaimed rewards.

    Σ subsidy = utxo + genesis_block + bip30 + scripts + unclaimed_rewards

A node without `-coinstatsindex` answers for its tip only: below it, the check is
reported as not possible (`ok` null), never guessed."""

from __future__ import annotations

from typing import Any

import asyncpg

from activities.btc.amounts import btc_to_sat
from activities.btc.findings import Finding, record_findings, resolve_unseen
from activities.btc.node import BtcNode
from pipeworks.http import ErrorTally
from pipeworks.pagination import RpcError

# Mainnet's BIP30 repeats (btc-rpc.md): their coinbases' txids overwrote earlier ones.
# By hash as well as height, as Core's coinstatsindex decides: another chain called
# "main" (a synthetic one) has ordinary blocks at these heights.
BIP30_BLOCKS = {
    91_842: "00000000000a4d0a398161ffc163c503763b1f4360639393e0e4c8e300e0caec",
    91_880: "00000000000743f190a18c5577a3c2d2a1f610ae9601ac046a38084ccb7cd721",
}


async def node_utxo_total(node: BtcNode, tally: ErrorTally, height: int
                          ) -> tuple[int | None, dict[str, Any], str | None]:
    """(UTXO total in sat, the node's answer, why there is none)."""
    try:
        answer = await node.call("gettxoutsetinfo", ["none", height], tally)
    except RpcError as err:
        if err.code not in (-8, -1):
            raise
        tip = (await node.chain_info(tally)).blocks
        if tip != height:
            return None, {}, (f"the node has no coinstatsindex, and its tip ({tip}) is "
                              f"not height {height}")
        answer = await node.call("gettxoutsetinfo", [], tally)
    if not isinstance(answer, dict) or "total_amount" not in answer:
        return None, {}, "gettxoutsetinfo gave no total_amount"
    if int(answer.get("height", height)) != height:
        return None, {}, f"gettxoutsetinfo answered for height {answer.get('height')}"
    return btc_to_sat(answer["total_amount"], "gettxoutsetinfo total_amount"), answer, None


async def supply_check(pool: asyncpg.Pool, node: BtcNode, tally: ErrorTally, *, run_id: str,
                       height: int, network: str) -> dict[str, Any]:
    ours = await pool.fetchrow(
        """SELECT count(*)::int AS heights, coalesce(sum(subsidy_sat), 0)::bigint AS subsidy,
                  coalesce(sum(unclaimed_sat), 0)::bigint AS unclaimed,
                  coalesce(sum(unspendable_sat), 0)::bigint AS scripts,
                  coalesce(sum(coinbase_out_sat) FILTER (WHERE height = 0), 0)::bigint
                      AS genesis,
                  coalesce(sum(coinbase_out_sat) FILTER (WHERE height = ANY($2::int[])
                                                         AND block_hash = ANY($3::text[])), 0)
                      ::bigint AS bip30
           FROM btc.block_calcs WHERE height <= $1""",
        height, list(BIP30_BLOCKS) if network == "main" else [],
        list(BIP30_BLOCKS.values()) if network == "main" else [])
    assert ours is not None  # an aggregate without GROUP BY has one row
    unspendable = {"genesis_block": ours["genesis"], "bip30": ours["bip30"],
                   "scripts": ours["scripts"], "unclaimed_rewards": ours["unclaimed"]}
    document: dict[str, Any] = {"height": height, "subsidy_sat": ours["subsidy"],
                                "utxo_sat": None, "unspendable_sat": unspendable, "ok": None}
    if ours["heights"] != height + 1:
        document["detail"] = (f"our calcs cover {ours['heights']} of the {height + 1} "
                              f"heights 0..{height}")
        return document
    differing = await pool.fetchval(
        "SELECT count(*) FROM btc.discrepancies WHERE resolved_at IS NULL AND height <= $1"
        " AND category IN ('stale_block', 'missing_block')", height)
    if differing:
        # Our figures there are another chain's: a sum over them says nothing more.
        document["detail"] = (f"{differing} heights hold stale or missing blocks: the "
                              "supply is compared once they are ingested again")
        return document
    utxo, answer, why = await node_utxo_total(node, tally, height)
    if utxo is None:
        document["detail"] = why
        return document
    document["utxo_sat"] = utxo
    if "total_unspendable_amount" in answer:
        document["node_unspendable_sat"] = btc_to_sat(answer["total_unspendable_amount"],
                                                      "total_unspendable_amount")
    expected_utxo = ours["subsidy"] - sum(unspendable.values())
    document["ok"] = expected_utxo == utxo
    finding = Finding(height, "supply", "utxo_sat", "supply_mismatch", expected_utxo, utxo,
                      {"subsidy_sat": ours["subsidy"], "unspendable_sat": unspendable})
    async with pool.acquire() as conn, conn.transaction():
        seen = [] if document["ok"] else [finding]
        await record_findings(conn, seen, run_id)
        # Only this height's supply finding: an earlier height's stays as it was.
        await resolve_unseen(conn, height, height, seen, [], run_id, checks=["supply"],
                             exclude_checks=())
    return document
