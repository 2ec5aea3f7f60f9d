"""One ingest batch: the main-chain blocks of heights lo..hi fetched from the node
(`getblockhash`, then `getblock` verbosity 3), written with their transactions and
their `btc.block_calcs` in one transaction, every change logged under the run (a failed
ingest is undone exactly). Idempotent: a re-run over the same chain writes nothing.

A block we hold as main at a height whose node hash differs (a reorganisation) is
flipped to `is_main` false first, so that the one-main-block-per-height index holds.
A block's transaction rows that the node's block does not have are deleted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from activities.btc.blocks import BlockRows, block_rows
from activities.btc.calcs import computed_calcs
from activities.btc.tables import BLOCK_CALCS, BLOCKS, TRANSACTIONS
from pipeworks.db import Connection
from pipeworks.errors import DataError
from pipeworks.merge import MergeCounts, merge_rows
from pipeworks.pagination import RpcError


def checked_blocks(heights: Sequence[int], hashes: Sequence[str | RpcError],
                   blocks: Sequence[dict[str, Any] | RpcError]) -> list[BlockRows]:
    """Ingest needs every block: an answer that is a finding for the reconciliation
    (pruned, gone) is a data error here, naming the height."""
    out = []
    for height, block_hash, block in zip(heights, hashes, blocks, strict=True):
        if isinstance(block_hash, RpcError):
            raise DataError(f"height {height}: {block_hash}")
        if isinstance(block, RpcError):
            raise DataError(f"block {block_hash} at height {height}: {block}")
        rows = block_rows(block)
        if rows.block[1] != height or rows.block[0] != block_hash:
            raise DataError(f"getblock {block_hash} answered block {rows.block[0]} at "
                            f"height {rows.block[1]}, asked for height {height}")
        out.append(rows)
    return out


def _add(total: MergeCounts, counts: MergeCounts) -> None:
    total.inserted += counts.inserted
    total.updated += counts.updated
    total.unchanged += counts.unchanged
    total.deleted += counts.deleted


async def write_batch(conn: Connection, blocks: Sequence[BlockRows], *, run_id: str,
                      scope: str, load_id: str, lo: int, hi: int, halving_interval: int
                      ) -> dict[str, MergeCounts]:
    """Inside a transaction. Returns the merge counts per table."""
    counts = {"blocks": MergeCounts(), "transactions": MergeCounts(),
              "block_calcs": MergeCounts()}
    new_hash = {rows.block[1]: rows.block[0] for rows in blocks}
    # Main blocks at these heights that the node no longer has there: off the main chain.
    stale = await conn.fetch(
        "SELECT hash, height, prev_hash, time, n_tx, size, weight FROM btc.blocks"
        " WHERE is_main AND height BETWEEN $1 AND $2", lo, hi)
    flipped = [(*tuple(r), False) for r in stale if new_hash.get(r["height"]) != r["hash"]]
    if flipped:
        _add(counts["blocks"], await merge_rows(conn, BLOCKS, flipped, run_id=run_id,
                                                scope=scope, load_id=load_id))
    _add(counts["blocks"], await merge_rows(conn, BLOCKS, [b.block for b in blocks],
                                            run_id=run_id, scope=scope, load_id=load_id))
    transactions = [tx for b in blocks for tx in b.transactions]
    # The block's rows become exactly the node's: a stray row of these blocks (a
    # duplicate, a transaction index the block does not have) is deleted, logged.
    _add(counts["transactions"], await merge_rows(
        conn, TRANSACTIONS, transactions, run_id=run_id, scope=scope, load_id=load_id,
        delete_where="t.block_hash = ANY($3::text[])",
        delete_args=([b.block[0] for b in blocks],),
        listed_keys=[(tx[0], tx[1]) for tx in transactions]))
    calcs = await computed_calcs(conn, lo, hi, halving_interval)
    _add(counts["block_calcs"], await merge_rows(conn, BLOCK_CALCS, calcs, run_id=run_id,
                                                 scope=scope, load_id=load_id))
    return counts
