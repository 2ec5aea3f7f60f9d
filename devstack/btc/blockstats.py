"""``getblockstats`` as Bitcoin Core computes it (src/rpc/blockchain.cpp), over a neutral
view of a block's transactions and their prevouts, so that a parsed real block and a
synthetic block plan go through the very same arithmetic.

Core's rules kept here: ``ins`` skips the coinbase input, ``outs`` counts every output,
``total_out`` and all size/fee figures skip the coinbase, fee rates are integer sat/vB
(``fee * 4 // weight``), percentiles are weighted by transaction weight, medians are
truncated integer medians, ``utxo_*_actual`` skip unspendable outputs, the genesis
block's output and the BIP30 repeats' coinbases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from devstack.btc.codec import compact_size_len

WITNESS_SCALE_FACTOR = 4
# sizeof(COutPoint) + sizeof(uint32_t) + sizeof(bool): a coin's overhead in the UTXO set.
PER_UTXO_OVERHEAD = 41
MAX_MONEY = 21_000_000 * 100_000_000
MAX_BLOCK_SERIALIZED_SIZE = 4_000_000

STAT_NAMES = (
    "avgfee", "avgfeerate", "avgtxsize", "blockhash", "feerate_percentiles", "height", "ins",
    "maxfee", "maxfeerate", "maxtxsize", "medianfee", "mediantime", "mediantxsize", "minfee",
    "minfeerate", "mintxsize", "outs", "subsidy", "swtotal_size", "swtotal_weight", "swtxs",
    "time", "total_out", "total_size", "total_weight", "totalfee", "txs", "utxo_increase",
    "utxo_increase_actual", "utxo_size_inc", "utxo_size_inc_actual",
)


@dataclass(frozen=True, slots=True)
class StatsOutput:
    value: int
    script_size: int
    unspendable: bool

    @property
    def utxo_size(self) -> int:
        """GetSerializeSize(CTxOut) + PER_UTXO_OVERHEAD."""
        return 8 + compact_size_len(self.script_size) + self.script_size + PER_UTXO_OVERHEAD


@dataclass(frozen=True, slots=True)
class StatsTx:
    is_coinbase: bool
    outputs: tuple[StatsOutput, ...]
    # (value, script size) of each spent output, in input order; empty for the coinbase.
    prevouts: tuple[tuple[int, int], ...]
    total_size: int
    weight: int
    has_witness: bool


@dataclass(frozen=True, slots=True)
class BlockIdentity:
    height: int
    blockhash: str
    time: int
    mediantime: int
    subsidy: int
    # The genesis block and mainnet's two BIP30 repeats: outputs that do not enter the set.
    genesis: bool = False
    bip30_repeat: bool = False


def _truncated_median(values: list[int]) -> int:
    if not values:
        return 0
    values.sort()
    size = len(values)
    if size % 2 == 0:
        return (values[size // 2 - 1] + values[size // 2]) // 2
    return values[size // 2]


def _percentiles_by_weight(scores: list[tuple[int, int]], total_weight: int) -> list[int]:
    result = [0] * 5
    if not scores:
        return result
    scores.sort()
    marks = (total_weight / 10.0, total_weight / 4.0, total_weight / 2.0,
             (total_weight * 3.0) / 4.0, (total_weight * 9.0) / 10.0)
    index = cumulative = 0
    for feerate, weight in scores:
        cumulative += weight
        while index < 5 and cumulative >= marks[index]:
            result[index] = feerate
            index += 1
    for i in range(index, 5):
        result[i] = scores[-1][0]
    return result


def compute_block_stats(block: BlockIdentity, txs: Sequence[StatsTx]) -> dict[str, Any]:
    """Every getblockstats field, keys sorted as Core returns them."""
    maxfee = maxfeerate = total_out = totalfee = inputs = maxtxsize = outputs = 0
    minfee = minfeerate = MAX_MONEY
    mintxsize = MAX_BLOCK_SERIALIZED_SIZE
    swtotal_size = swtotal_weight = swtxs = total_size = total_weight = 0
    utxos = utxo_size_inc = utxo_size_inc_actual = 0
    fees: list[int] = []
    feerates: list[tuple[int, int]] = []
    sizes: list[int] = []
    for tx in txs:
        outputs += len(tx.outputs)
        tx_total_out = 0
        skip_actual = block.genesis or (block.bip30_repeat and tx.is_coinbase)
        for out in tx.outputs:
            tx_total_out += out.value
            size = out.utxo_size
            utxo_size_inc += size
            if skip_actual or out.unspendable:
                continue
            utxos += 1
            utxo_size_inc_actual += size
        if tx.is_coinbase:
            continue
        inputs += len(tx.prevouts)
        total_out += tx_total_out
        tx_size = tx.total_size
        sizes.append(tx_size)
        maxtxsize = max(maxtxsize, tx_size)
        mintxsize = min(mintxsize, tx_size)
        total_size += tx_size
        weight = tx.weight
        total_weight += weight
        if tx.has_witness:
            swtxs += 1
            swtotal_size += tx_size
            swtotal_weight += weight
        tx_total_in = 0
        for value, script_size in tx.prevouts:
            tx_total_in += value
            spent = StatsOutput(value, script_size, False).utxo_size
            utxo_size_inc -= spent
            utxo_size_inc_actual -= spent
        fee = tx_total_in - tx_total_out
        fees.append(fee)
        maxfee = max(maxfee, fee)
        minfee = min(minfee, fee)
        totalfee += fee
        feerate = (fee * WITNESS_SCALE_FACTOR) // weight if weight else 0
        feerates.append((feerate, weight))
        maxfeerate = max(maxfeerate, feerate)
        minfeerate = min(minfeerate, feerate)
    non_coinbase = len(txs) - 1
    return {
        "avgfee": totalfee // non_coinbase if non_coinbase > 0 else 0,
        "avgfeerate": (totalfee * WITNESS_SCALE_FACTOR) // total_weight if total_weight else 0,
        "avgtxsize": total_size // non_coinbase if non_coinbase > 0 else 0,
        "blockhash": block.blockhash,
        "feerate_percentiles": _percentiles_by_weight(feerates, total_weight),
        "height": block.height,
        "ins": inputs,
        "maxfee": maxfee,
        "maxfeerate": maxfeerate,
        "maxtxsize": maxtxsize,
        "medianfee": _truncated_median(fees),
        "mediantime": block.mediantime,
        "mediantxsize": _truncated_median(sizes),
        "minfee": 0 if minfee == MAX_MONEY else minfee,
        "minfeerate": 0 if minfeerate == MAX_MONEY else minfeerate,
        "mintxsize": 0 if mintxsize == MAX_BLOCK_SERIALIZED_SIZE else mintxsize,
        "outs": outputs,
        "subsidy": block.subsidy,
        "swtotal_size": swtotal_size,
        "swtotal_weight": swtotal_weight,
        "swtxs": swtxs,
        "time": block.time,
        "total_out": total_out,
        "total_size": total_size,
        "total_weight": total_weight,
        "totalfee": totalfee,
        "txs": len(txs),
        "utxo_increase": outputs - inputs,
        "utxo_increase_actual": utxos - inputs,
        "utxo_size_inc": utxo_size_inc,
        "utxo_size_inc_actual": utxo_size_inc_actual,
    }


def select_stats(stats: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """Core's answer to a stats list: sorted, deduplicated; an unknown name raises KeyError
    naming it (the caller answers -8 ``Invalid selected statistic``)."""
    selected: dict[str, Any] = {}
    for name in sorted(set(names)):
        if name not in stats:
            raise KeyError(name)
        selected[name] = stats[name]
    return selected
