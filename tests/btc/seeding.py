"""Our tables as a correct ingest of a synthetic chain would leave them, written
straight from the emulator's chain (COPY), for tests and benchmarks of the
reconciliation over hundreds of thousands of heights (an ingest of them through the
workflow would take longer than the test)."""

from __future__ import annotations

from datetime import UTC, datetime

from activities.btc.calcs import CALC_VERSION
from devstack.btc import SyntheticChain
from pipeworks.db import Connection


async def seed_from_chain(db: Connection, chain: SyntheticChain, lo: int, hi: int) -> int:
    """Blocks, one row per transaction, and calcs of heights lo..hi; returns how many
    heights have a coinbase that claims less than it may."""
    blocks, calcs = [], []
    underclaims = 0
    for height in range(lo, hi + 1):
        stats = chain.stats(height)
        block_hash = stats["blockhash"]
        ingested = chain.ingested_figures(height)
        coinbase = ingested["coinbase_out_sat"]
        unclaimed = stats["subsidy"] + stats["totalfee"] - coinbase
        underclaims += unclaimed > 0
        blocks.append((block_hash, height, chain.hash_at(height - 1) if height else None,
                       datetime.fromtimestamp(stats["time"], UTC), stats["txs"], True))
        calcs.append((height, block_hash, stats["txs"], stats["ins"], stats["outs"],
                      stats["total_out"], stats["totalfee"], coinbase, stats["subsidy"],
                      unclaimed, ingested["unspendable_sat"], CALC_VERSION))
    await db.copy_records_to_table(
        "blocks", schema_name="btc", records=blocks,
        columns=["hash", "height", "prev_hash", "time", "n_tx", "is_main"])
    await db.copy_records_to_table(
        "block_calcs", schema_name="btc", records=calcs,
        columns=["height", "block_hash", "tx_count", "input_count", "output_count",
                 "total_out_sat", "total_fee_sat", "coinbase_out_sat", "subsidy_sat",
                 "unclaimed_sat", "unspendable_sat", "calc_version"])
    # As many transaction rows as each block has (the partial-block check counts them).
    await db.execute(
        """INSERT INTO btc.transactions (block_hash, tx_index, txid, is_coinbase,
               input_count, output_count, input_value_sat, output_value_sat, fee_sat)
           SELECT b.hash, i, md5(b.hash || i), i = 0, 0, 1, 0, 0, CASE WHEN i > 0 THEN 0 END
           FROM btc.blocks b, generate_series(0, b.n_tx - 1) AS i
           WHERE b.height BETWEEN $1 AND $2""", lo, hi)
    return underclaims
