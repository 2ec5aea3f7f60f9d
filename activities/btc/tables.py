"""The tables ingest writes through the kernel's merge (change-logged, so a failed or
cancelled ingest is undone exactly), in the order an undo goes through them."""

from __future__ import annotations

from activities.btc.blocks import BLOCK_COLUMNS, TX_COLUMNS
from pipeworks.merge import TableSpec

BLOCKS = TableSpec("btc.blocks", "hash", BLOCK_COLUMNS, lineage="load_id")
TRANSACTIONS = TableSpec("btc.transactions", ("block_hash", "tx_index"), TX_COLUMNS,
                         lineage="load_id")
CALC_COLUMNS = ("height", "block_hash", "tx_count", "input_count", "output_count",
                "total_out_sat", "total_fee_sat", "coinbase_out_sat", "subsidy_sat",
                "unclaimed_sat", "unspendable_sat", "calc_version")
BLOCK_CALCS = TableSpec("btc.block_calcs", "height", CALC_COLUMNS, lineage="load_id")

# Derived before raw: an undo restores the calcs before the rows they came from.
UNDO_SPECS = (BLOCK_CALCS, TRANSACTIONS, BLOCKS)
UNDO_ORDER = tuple(spec.name for spec in UNDO_SPECS)
