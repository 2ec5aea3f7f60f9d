"""`btc.block_calcs`, computed set-based in SQL from our stored main-chain blocks and
their transactions (the subsidy, a function of the height, and what follows from it in
Python), following getblockstats' definitions (btc-rpc.md):
txs incl. the coinbase; ins without the coinbase's input; outs incl. the coinbase's;
total_out and totalfee over non-coinbase transactions only; subsidy 50 BTC >> halvings;
unclaimed = subsidy + fees - coinbase outputs (an under-claim is information)."""

from __future__ import annotations

from typing import Any

from activities.btc.amounts import subsidy_sat
from pipeworks.db import Connection

# Bumped whenever a definition below changes: rows computed by another version differ.
CALC_VERSION = "1"

_CALCS = """
SELECT b.height, b.hash AS block_hash,
       count(t.tx_index)::int AS tx_count,
       coalesce(sum(t.input_count) FILTER (WHERE NOT t.is_coinbase), 0)::int AS input_count,
       coalesce(sum(t.output_count), 0)::int AS output_count,
       coalesce(sum(t.output_value_sat) FILTER (WHERE NOT t.is_coinbase), 0)::bigint
           AS total_out_sat,
       -- Unknown (null) as soon as one transaction's fee is unknown.
       CASE WHEN bool_and(t.fee_sat IS NOT NULL OR t.is_coinbase)
            THEN coalesce(sum(t.fee_sat) FILTER (WHERE NOT t.is_coinbase), 0) END::bigint
           AS total_fee_sat,
       sum(t.output_value_sat) FILTER (WHERE t.is_coinbase)::bigint AS coinbase_out_sat,
       coalesce(sum(t.unspendable_value_sat), 0)::bigint AS unspendable_sat
FROM btc.blocks b
LEFT JOIN btc.transactions t ON t.block_hash = b.hash
WHERE b.is_main AND b.height BETWEEN $1 AND $2
GROUP BY b.height, b.hash
ORDER BY b.height
"""


async def computed_calcs(conn: Connection, lo: int, hi: int, halving_interval: int
                         ) -> list[tuple[Any, ...]]:
    """Rows of `tables.BLOCK_CALCS` for heights lo..hi that have a main block."""
    rows = await conn.fetch(_CALCS, lo, hi)
    out = []
    for r in rows:
        fee, coinbase = r["total_fee_sat"], r["coinbase_out_sat"]
        subsidy = subsidy_sat(r["height"], halving_interval)
        unclaimed = subsidy + fee - coinbase if fee is not None and coinbase is not None else None
        out.append((r["height"], r["block_hash"], r["tx_count"], r["input_count"],
                    r["output_count"], r["total_out_sat"], fee, coinbase, subsidy,
                    unclaimed, r["unspendable_sat"], CALC_VERSION))
    return out
