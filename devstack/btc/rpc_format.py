"""Blocks, headers and transactions as Core's RPC writes them (blockheaderToJSON,
blockToJSON, TxToUniv), including the verbosity 2 ``fee`` and verbosity 3 ``prevout``
that need undo data. Amounts are ``jsonout.btc`` numbers (exactly 8 decimals)."""

from __future__ import annotations

from typing import Any

from devstack.btc.chain import Coin, FullBlock, HeaderInfo
from devstack.btc.consensus import difficulty, target
from devstack.btc.jsonout import btc, double
from devstack.btc.script import asm, script_pubkey_json
from devstack.btc.transactions import Tx


def header_json(info: HeaderInfo, confirmations: int, next_hash: str | None) -> dict[str, Any]:
    header = info.header
    result: dict[str, Any] = {
        "hash": info.hash,
        "confirmations": confirmations,
        "height": info.height,
        "version": header.version,
        "versionHex": f"{header.version & 0xFFFF_FFFF:08x}",
        "merkleroot": header.merkle_root,
        "time": header.time,
        "mediantime": info.mediantime,
        "nonce": header.nonce,
        "bits": f"{header.bits:08x}",
        "target": f"{target(header.bits):064x}",
        "difficulty": double(difficulty(header.bits)),
        "chainwork": f"{info.chainwork:064x}",
        "nTx": info.n_tx,
    }
    if info.height > 0:
        result["previousblockhash"] = header.prev_hash
    if next_hash is not None:
        result["nextblockhash"] = next_hash
    return result


def tx_json(tx: Tx, undo: tuple[Coin, ...] | None, verbosity: int,
            network: str) -> dict[str, Any]:
    """TxToUniv. ``undo`` (the spent coins) is None for the coinbase and without undo
    data; with it, ``fee`` is shown, and at verbosity 3 each input's ``prevout``."""
    vin = []
    for n, txin in enumerate(tx.inputs):
        entry: dict[str, Any]
        if tx.is_coinbase:
            entry = {"coinbase": txin.script_sig.hex()}
        else:
            entry = {"txid": txin.prev_txid, "vout": txin.prev_index,
                     "scriptSig": {"asm": asm(txin.script_sig, sighash_decode=True),
                                   "hex": txin.script_sig.hex()}}
        if txin.witness:
            entry["txinwitness"] = [item.hex() for item in txin.witness]
        if undo is not None and verbosity >= 3:
            coin = undo[n]
            entry["prevout"] = {"generated": coin.coinbase, "height": coin.height,
                                "value": btc(coin.value),
                                "scriptPubKey": script_pubkey_json(coin.script, network)}
        entry["sequence"] = txin.sequence
        vin.append(entry)
    vout = [{"value": btc(out.value), "n": n,
             "scriptPubKey": script_pubkey_json(out.script, network)}
            for n, out in enumerate(tx.outputs)]
    result: dict[str, Any] = {
        "txid": tx.txid, "hash": tx.wtxid, "version": tx.version, "size": tx.size,
        "vsize": tx.vsize, "weight": tx.weight, "locktime": tx.locktime, "vin": vin,
        "vout": vout,
    }
    if undo is not None and not tx.is_coinbase:
        result["fee"] = btc(sum(coin.value for coin in undo)
                            - sum(out.value for out in tx.outputs))
    result["hex"] = tx.raw.hex()
    return result


def block_json(full: FullBlock, verbosity: int, confirmations: int, next_hash: str | None,
               network: str, have_undo: bool) -> dict[str, Any]:
    """getblock at verbosity 1 (txids), 2 (transactions) or 3 (with prevouts)."""
    block = full.block
    result = header_json(full.info, confirmations, next_hash)
    result["strippedsize"] = block.stripped_size
    result["size"] = block.size
    result["weight"] = block.weight
    if verbosity <= 1:
        result["tx"] = [tx.txid for tx in block.txs]
        return result
    result["tx"] = [
        tx_json(tx, full.undo[i - 1] if have_undo and i > 0 else None, verbosity, network)
        for i, tx in enumerate(block.txs)]
    return result
