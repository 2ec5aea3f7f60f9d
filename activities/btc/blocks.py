"""A node's block (`getblock` verbosity 3, or 2 with `fee`) as our rows: one
`btc.blocks` row and one `btc.transactions` row per transaction, amounts in satoshis.

Without prevouts (no undo data, Core < 23) a transaction's input value is unknown; its
fee comes from `fee` when present (Core >= 22), else stays unknown (null)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from activities.btc.amounts import btc_to_sat
from pipeworks.errors import DataError

# Core's IsUnspendable: a script that starts with OP_RETURN, or longer than this.
MAX_SCRIPT_BYTES = 10_000
OP_RETURN_HEX = "6a"


@dataclass
class BlockRows:
    block: tuple[Any, ...]           # btc.blocks columns (BLOCK_COLUMNS), is_main true
    transactions: list[tuple[Any, ...]]


BLOCK_COLUMNS = ("hash", "height", "prev_hash", "time", "n_tx", "size", "weight", "is_main")
TX_COLUMNS = ("block_hash", "tx_index", "txid", "is_coinbase", "input_count", "output_count",
              "input_value_sat", "output_value_sat", "fee_sat", "unspendable_outputs",
              "unspendable_value_sat")


def is_unspendable(script_pubkey: Any) -> bool:
    if not isinstance(script_pubkey, dict):
        return False
    if script_pubkey.get("type") == "nulldata":
        return True
    script = script_pubkey.get("hex")
    return isinstance(script, str) and (script.startswith(OP_RETURN_HEX)
                                        or len(script) // 2 > MAX_SCRIPT_BYTES)


def block_rows(block: dict[str, Any]) -> BlockRows:
    """Raises DataError naming the block and field for anything malformed."""
    try:
        block_hash = str(block["hash"])
        height = int(block["height"])
        txs = block["tx"]
        if not isinstance(txs, list) or not txs or not isinstance(txs[0], dict):
            raise DataError(f"block {block_hash}: `tx` is not a list of transactions "
                            "(getblock verbosity 2 or 3)")
        rows = [_transaction_row(block_hash, index, tx) for index, tx in enumerate(txs)]
        moment = datetime.fromtimestamp(int(block["time"]), UTC)
        header = (block_hash, height, block.get("previousblockhash"), moment,
                  int(block.get("nTx", len(txs))), _int_or_none(block.get("size")),
                  _int_or_none(block.get("weight")), True)
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"getblock {block.get('hash', '?')}: malformed: "
                        f"{type(err).__name__}: {err}") from None
    return BlockRows(header, rows)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _transaction_row(block_hash: str, index: int, tx: dict[str, Any]) -> tuple[Any, ...]:
    txid = str(tx["txid"])
    where = f"block {block_hash} tx {index} ({txid})"
    vin, vout = tx["vin"], tx["vout"]
    coinbase = index == 0 and bool(vin) and "coinbase" in vin[0]
    outputs = [btc_to_sat(out["value"], f"{where} output {out.get('n')}") for out in vout]
    unspendable = [value for out, value in zip(vout, outputs, strict=True)
                   if is_unspendable(out.get("scriptPubKey"))]
    output_value = sum(outputs)
    input_value: int | None = 0
    fee: int | None = None
    if not coinbase:
        prevouts = [i.get("prevout") for i in vin]
        if all(isinstance(p, dict) for p in prevouts):
            input_value = sum(btc_to_sat(p["value"], f"{where} prevout")
                              for p in prevouts)
            fee = input_value - output_value
        else:
            input_value = None
            if "fee" in tx:
                fee = btc_to_sat(tx["fee"], f"{where} fee")
    # The coinbase's input is not an input (getblockstats `ins`).
    input_count = 0 if coinbase else len(vin)
    return (block_hash, index, txid, coinbase, input_count, len(vout), input_value,
            output_value, fee, len(unspendable), sum(unspendable))
