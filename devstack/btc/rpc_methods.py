"""The RPC methods of contracts/btc-rpc.md, with Core's parameter handling and error
codes and messages (-1 help text on a wrong argument count, -3 wrong JSON type, -5 unknown
block, -8 invalid parameter, -28 warm-up, -32601 unknown method, -32603 index syncing).

Each call reads the chain under its lock; the per-transaction latency of getblock and
getblockstats is slept afterwards, outside the lock, so a slow call does not stall
others (it occupies one RPC thread, as in Core).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from devstack.btc.blockstats import select_stats
from devstack.btc.chain import BtcChain, IndexStats
from devstack.btc.consensus import difficulty, target
from devstack.btc.faults import BtcFaultConfig
from devstack.btc.jsonout import btc, double
from devstack.btc.node_state import NodeState
from devstack.btc.rpc_format import block_json, header_json

HASH_TYPES = ("hash_serialized_3", "muhash", "none")


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class RpcContext:
    chain: BtcChain
    state: NodeState
    config: BtcFaultConfig
    # Sleeps (interruptibly, when the server stops); called after the chain lock is freed.
    sleep: Callable[[float], None]
    # Seconds of work this call still has to "take" (per-transaction latency).
    pending_s: float = field(default=0.0)

    def charge_txs(self, n_tx: int) -> None:
        self.pending_s += n_tx * self.config.latency_us_per_tx / 1e6


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    params: tuple[str, ...]
    required: int
    help: str
    run: Callable[[RpcContext, list[Any]], Any]


def type_name(value: Any) -> str:
    """UniValue's names of JSON types."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _type_error(value: Any, expected: str) -> RpcError:
    return RpcError(-3, f"JSON value of type {type_name(value)} is not of expected type "
                        f"{expected}")


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise _type_error(value, "number")
    if isinstance(value, Decimal):
        if value != value.to_integral_value():
            raise RpcError(-1, "JSON integer out of range")
        return int(value)
    return value


def _bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _type_error(value, "bool")
    return value


def _hash(value: Any, name: str) -> str:
    """ParseHashV: 64 hex characters (either case)."""
    if not isinstance(value, str):
        raise _type_error(value, "string")
    if len(value) != 64:
        raise RpcError(-8, f"{name} must be of length 64 (not {len(value)}, for '{value}')")
    try:
        bytes.fromhex(value)
    except ValueError:
        raise RpcError(-8, f"{name} must be hexadecimal string (not '{value}')") from None
    return value.lower()


def _known(chain: BtcChain, block_hash: str) -> int:
    height = chain.locate(block_hash)
    if height is None:
        raise RpcError(-5, "Block not found")
    return height


def _hash_or_height(ctx: RpcContext, value: Any) -> tuple[str, int]:
    """ParseHashOrHeight: a main-chain height, or any known block's hash."""
    chain = ctx.chain
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        height = _int(value)
        if height < 0:
            raise RpcError(-8, f"Target block height {height} is negative")
        tip = chain.tip_height()
        if height > tip:
            raise RpcError(-8, f"Target block height {height} after current tip {tip}")
        return chain.hash_at(height), height
    if not isinstance(value, str):
        raise _type_error(value, "string or number")
    block_hash = _hash(value, "hash_or_height")
    return block_hash, _known(chain, block_hash)


def _confirmations(chain: BtcChain, block_hash: str, height: int) -> tuple[int, str | None]:
    """(confirmations, nextblockhash): -1 and no next block off the main chain."""
    tip = chain.tip_height()
    if height > tip or chain.hash_at(height) != block_hash:
        return -1, None
    return tip - height + 1, chain.hash_at(height + 1) if height < tip else None


def _check_block_data(ctx: RpcContext, height: int) -> None:
    if ctx.state.pruned(height):
        raise RpcError(-1, "Block not available (pruned data)")
    if height in ctx.config.missing_block_heights:
        raise RpcError(-1, "Block not found on disk")


# -- methods --------------------------------------------------------------------------------


def getblockchaininfo(ctx: RpcContext, args: list[Any]) -> Any:
    chain, state = ctx.chain, ctx.state
    tip = chain.tip_height()
    info = chain.header(chain.hash_at(tip))
    bits = info.header.bits
    result: dict[str, Any] = {
        "chain": state.network,
        "blocks": tip,
        "headers": tip + (144 if state.ibd else 0),
        "bestblockhash": info.hash,
        "bits": f"{bits:08x}",
        "target": f"{target(bits):064x}",
        "difficulty": double(difficulty(bits)),
        "time": info.header.time,
        "mediantime": info.mediantime,
        "verificationprogress": double(0.5 if state.ibd else 1.0),
        "initialblockdownload": state.ibd,
        "chainwork": f"{info.chainwork:064x}",
        "size_on_disk": 293 * (tip + 1),
        "pruned": state.prune_height is not None,
    }
    if state.prune_height is not None:
        result["pruneheight"] = state.prune_height
        result["automatic_pruning"] = False
    result["warnings"] = []
    return result


def getblockcount(ctx: RpcContext, args: list[Any]) -> Any:
    return ctx.chain.tip_height()


def getblockhash(ctx: RpcContext, args: list[Any]) -> Any:
    height = _int(args[0])
    if not 0 <= height <= ctx.chain.tip_height():
        raise RpcError(-8, "Block height out of range")
    return ctx.chain.hash_at(height)


def getblockheader(ctx: RpcContext, args: list[Any]) -> Any:
    block_hash = _hash(args[0], "hash")
    verbose = _bool(args[1] if len(args) > 1 else None, True)
    height = _known(ctx.chain, block_hash)
    info = ctx.chain.header(block_hash)
    if not verbose:
        return info.header.serialize().hex()
    confirmations, next_hash = _confirmations(ctx.chain, block_hash, height)
    return header_json(info, confirmations, next_hash)


def getblockstats(ctx: RpcContext, args: list[Any]) -> Any:
    block_hash, height = _hash_or_height(ctx, args[0])
    names = args[1] if len(args) > 1 else None
    if names is not None:
        if not isinstance(names, list):
            raise _type_error(names, "array")
        for name in names:
            if not isinstance(name, str):
                raise _type_error(name, "string")
    _check_block_data(ctx, height)
    if height > 0 and height in ctx.config.missing_undo_heights:
        raise RpcError(-1, "Can't read undo data from disk")
    stats = ctx.chain.block_stats(block_hash)
    ctx.charge_txs(stats["txs"])
    if not names:
        return stats
    try:
        return select_stats(stats, names)
    except KeyError as exc:
        raise RpcError(-8, f"Invalid selected statistic '{exc.args[0]}'") from None


def _verbosity(value: Any) -> int:
    if value is None:
        return 1
    if isinstance(value, bool):
        return 1 if value else 0
    return min(max(_int(value), 0), 3)


def getblock(ctx: RpcContext, args: list[Any]) -> Any:
    block_hash = _hash(args[0], "blockhash")
    verbosity = _verbosity(args[1] if len(args) > 1 else None)
    chain = ctx.chain
    height = _known(chain, block_hash)
    _check_block_data(ctx, height)
    full = chain.full_block(block_hash)
    ctx.charge_txs(len(full.block.txs))
    if verbosity == 0:
        return full.block.serialize().hex()
    confirmations, next_hash = _confirmations(chain, block_hash, height)
    have_undo = height > 0 and height not in ctx.config.missing_undo_heights
    return block_json(full, verbosity, confirmations, next_hash, ctx.state.network, have_undo)


def _index_json(stats: IndexStats, hash_type: str) -> dict[str, Any]:
    info = stats.block_info
    spent = info.unspendables
    result: dict[str, Any] = {"height": stats.height, "bestblock": stats.hash,
                              "txouts": stats.txouts, "bogosize": stats.bogosize}
    if hash_type == "muhash":
        result["muhash"] = stats.muhash
    result["total_amount"] = btc(stats.total_amount)
    result["total_unspendable_amount"] = btc(stats.total_unspendable_amount)
    result["block_info"] = {
        "prevout_spent": btc(info.prevout_spent),
        "coinbase": btc(info.coinbase),
        "new_outputs_ex_coinbase": btc(info.new_outputs_ex_coinbase),
        "unspendable": btc(info.unspendable),
        "unspendables": {"genesis_block": btc(spent.genesis_block), "bip30": btc(spent.bip30),
                         "scripts": btc(spent.scripts),
                         "unclaimed_rewards": btc(spent.unclaimed_rewards)},
    }
    return result


def gettxoutsetinfo(ctx: RpcContext, args: list[Any]) -> Any:
    chain, state = ctx.chain, ctx.state
    raw_type = args[0] if args else None
    if raw_type is not None and not isinstance(raw_type, str):
        raise _type_error(raw_type, "string")
    hash_type = raw_type or "hash_serialized_3"
    if hash_type not in HASH_TYPES:
        raise RpcError(-8, f"'{hash_type}' is not a valid hash_type")
    use_index = _bool(args[2] if len(args) > 2 else None, True)
    target_block = args[1] if len(args) > 1 else None
    block_hash = chain.hash_at(chain.tip_height())
    height = chain.tip_height()
    if target_block is not None:
        if not state.coinstatsindex:
            raise RpcError(-8, "Querying specific block heights requires coinstatsindex")
        if hash_type == "hash_serialized_3":
            raise RpcError(-8, "hash_serialized_3 hash type cannot be queried for a specific "
                               "block")
        if not use_index:
            raise RpcError(-8, "Cannot set use_index to false when querying for a specific "
                               "block")
        block_hash, height = _hash_or_height(ctx, target_block)
    index_height = ctx.config.index_height
    if use_index and state.coinstatsindex and index_height is not None and \
            height > index_height:
        raise RpcError(-32603, "Unable to get data because coinstatsindex is still syncing. "
                               f"Current height: {index_height}")
    if use_index and state.coinstatsindex and hash_type != "hash_serialized_3":
        return _index_json(chain.index_stats(block_hash), hash_type)
    scan = chain.utxo_scan()
    ctx.pending_s += ctx.config.scan_seconds
    result: dict[str, Any] = {"height": scan.height, "bestblock": scan.hash,
                              "txouts": scan.txouts, "bogosize": scan.bogosize}
    if hash_type == "hash_serialized_3":
        result["hash_serialized_3"] = scan.hash_serialized
    elif hash_type == "muhash":
        result["muhash"] = scan.hash_serialized
    result["total_amount"] = btc(scan.total_amount)
    result["transactions"] = scan.transactions
    result["disk_size"] = scan.disk_size
    return result


def getchaintips(ctx: RpcContext, args: list[Any]) -> Any:
    return [{"height": tip.height, "hash": tip.hash, "branchlen": tip.branchlen,
             "status": tip.status} for tip in ctx.chain.tips()]


def _help(usage: str, summary: str, arguments: str = "") -> str:
    name = usage.split()[0]
    text = f"{usage}\n\n{summary}\n"
    if arguments:
        text += f"\nArguments:\n{arguments}\n"
    return text + f"\nExamples:\n> bitcoin-cli {name}\n"


METHODS = {method.name: method for method in (
    Method("getblockchaininfo", (), 0, _help(
        "getblockchaininfo", "Returns an object containing various state info regarding "
        "blockchain processing."), getblockchaininfo),
    Method("getblockcount", (), 0, _help(
        "getblockcount", "Returns the height of the most-work fully-validated chain.\n"
        "The genesis block has height 0."), getblockcount),
    Method("getblockhash", ("height",), 1, _help(
        "getblockhash height", "Returns hash of block in best-block-chain at height provided.",
        "1. height    (numeric, required) The height index"), getblockhash),
    Method("getblockheader", ("blockhash", "verbose"), 1, _help(
        "getblockheader \"blockhash\" ( verbose )",
        "If verbose is false, returns a string that is serialized, hex-encoded data for "
        "blockheader 'hash'.\nIf verbose is true, returns an Object with information about "
        "blockheader <hash>.",
        "1. blockhash    (string, required) The block hash\n"
        "2. verbose      (boolean, optional, default=true) true for a json object, false for "
        "the hex-encoded data"), getblockheader),
    Method("getblockstats", ("hash_or_height", "stats"), 1, _help(
        "getblockstats hash_or_height ( stats )",
        "Compute per block statistics for a given window. All amounts are in satoshis.\n"
        "It won't work for some heights with pruning.",
        "1. hash_or_height    (string or numeric, required) The block hash or height of the "
        "target block\n2. stats             (json array, optional, default=all values) "
        "Values to plot (see result below)"), getblockstats),
    Method("getblock", ("blockhash", "verbosity"), 1, _help(
        "getblock \"blockhash\" ( verbosity )",
        "If verbosity is 0, returns a string that is serialized, hex-encoded data for block "
        "'hash'.\nIf verbosity is 1, returns an Object with information about block "
        "<hash>.\nIf verbosity is 2, returns an Object with information about block <hash> "
        "and information about each transaction.\nIf verbosity is 3, returns an Object with "
        "information about block <hash> and information about each transaction, including "
        "prevout information for inputs (only for unpruned blocks in the current best "
        "chain).",
        "1. blockhash    (string, required) The block hash\n2. verbosity    (numeric, "
        "optional, default=1) 0 for hex-encoded data, 1 for a JSON object, 2 for JSON object "
        "with transaction data, and 3 for JSON object with transaction data including "
        "prevout information for inputs"), getblock),
    Method("gettxoutsetinfo", ("hash_type", "hash_or_height", "use_index"), 0, _help(
        "gettxoutsetinfo ( \"hash_type\" hash_or_height use_index )",
        "Returns statistics about the unspent transaction output set.\nNote this call may "
        "take some time if you are not using coinstatsindex.",
        "1. hash_type         (string, optional, default=\"hash_serialized_3\") Which UTXO "
        "set hash should be calculated. Options: 'hash_serialized_3' (the legacy algorithm), "
        "'muhash', 'none'.\n2. hash_or_height    (string or numeric, optional, default=the "
        "current best block) The block hash or height of the target height (only available "
        "with coinstatsindex).\n3. use_index         (boolean, optional, default=true) Use "
        "coinstatsindex, if available."), gettxoutsetinfo),
    Method("getchaintips", (), 0, _help(
        "getchaintips", "Return information about all known tips in the block tree, "
        "including the main chain as well as orphaned branches."), getchaintips),
)}


def positional(method: Method, params: Any) -> list[Any]:
    """Positional arguments from a params array or object (named arguments)."""
    if isinstance(params, dict):
        for key in params:
            if key not in method.params:
                raise RpcError(-8, f"Unknown named parameter {key}")
        args = [params.get(name) for name in method.params]
        while args and args[-1] is None:
            args.pop()
    else:
        args = list(params)
    if not method.required <= len(args) <= len(method.params):
        raise RpcError(-1, method.help)
    for index in range(method.required):
        if args[index] is None:
            raise _type_error(None, "string" if "hash" in method.params[index] else "number")
    return args


def call(ctx: RpcContext, name: str, params: Any) -> Any:
    """One RPC call, as CRPCTable::execute: warm-up first, then the method."""
    message = ctx.state.warmup_message()
    if message is not None:
        raise RpcError(-28, message)
    method = METHODS.get(name)
    if method is None:
        raise RpcError(-32601, "Method not found")
    args = positional(method, params)
    with ctx.chain.lock:
        return method.run(ctx, args)
