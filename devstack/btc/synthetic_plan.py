"""The synthetic chain's arithmetic: what every block contains, decided without building
it, and the running totals of the UTXO set in closed form.

A block is identified by its height ``h`` and its *generation* ``e`` (0 for the original
chain, one more per reorg). Everything about it is derived from ``(seed, h, e)``:

- per-height figures that enter running totals (UTXO count, OP_RETURN values, unclaimed
  rewards) come from a linear trend plus per-generation tables of period ``PERIOD``, so
  that a total over 0..H costs O(eras + reorgs), not O(H);
- a block's *figures* (``block_figures``: transaction, input and output counts, the value
  spent and paid, fees, coinbase value, OP_RETURN value, shortfall) are closed-form per
  height: the tables, the trend, the subsidy and one hash, O(1) whatever the block size;
- the rest (which output each input spends, script types, each transaction's fee and
  output values) comes from a per-block random stream, in a *plan* (``plan_block``):
  counts, values and sizes of every transaction, without scripts, signatures or hashes,
  built to add up exactly to the block's figures. A full chain builds the block from the
  plan.

Money flow (every value is known to the block that spends it, nothing needs history):
block ``b``'s coinbase pays its reward output plus ``payouts(b)`` outputs worth a fixed
share of the subsidy; block ``b + maturity`` spends exactly those payouts, one per
payout-funded transaction. A few further inputs (``spread`` transactions funded that way
only, plus ``extra`` second inputs of payout-funded transactions) spend outputs that
earlier payout-funded transactions of the same block reserved for them, with values from
the block's hash; fees are a per-block total (the block's fee rate times its estimated
virtual size, capped at an eighth of each payout and half of each reserved output) that
the plan shares out by size and a drawn fee rate. So ``total_out`` = payouts spent +
reserved values - fees, and every compared getblockstats field is closed-form.

Aggregate-only chains (``estimated_block_stats``) serve getblockstats from the figures
alone: ``txs``, ``ins``, ``outs``, ``total_out``, ``totalfee``, ``avgfee``, ``subsidy``,
``utxo_increase``, ``utxo_increase_actual`` (and the identity fields) equal what the built
block gives; sizes, weights, ``swtxs``, ``utxo_size_inc*``, min/max/median fees and sizes
and the fee rates are *estimates* from the counts (expected script and input sizes of the
plan's kind weights), self-consistent (min <= median <= max, averages as Core rounds them,
percentiles non-decreasing) but not those of the built block.
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from statistics import NormalDist
from typing import Any, NamedTuple

from devstack.btc.codec import compact_size_len
from devstack.btc.consensus import INITIAL_SUBSIDY, subsidy

PERIOD = 1024
# Output kinds and their scriptPubKey sizes.
SCRIPT_SIZE = {"p2pkh": 25, "p2sh": 23, "p2wpkh": 22, "p2wsh": 34, "p2tr": 34, "p2pk": 35,
               "commitment": 38}
# How an output of each kind is spent: scriptSig size, witness item sizes (p2sh is
# P2SH-P2WPKH; signatures are 71-byte DER + sighash byte, Schnorr 64 bytes).
SPEND_SHAPE: dict[str, tuple[int, tuple[int, ...]]] = {
    "p2pkh": (107, ()), "p2wpkh": (0, (72, 33)), "p2sh": (23, (72, 33)),
    "p2wsh": (0, (72, 35)), "p2tr": (0, (64,)), "p2pk": (73, ()),
}
OUTPUT_KINDS = ("p2wpkh", "p2pkh", "p2tr", "p2sh", "p2wsh")
OUTPUT_WEIGHTS = (45, 20, 20, 10, 5)
# OP_RETURN values scale with the subsidy: multiplier * (subsidy(h - maturity) >> 24).
OP_VALUE_SHIFT = 24
# Under-claimed coinbases: multiplier * (subsidy(h) >> 16) sat left unclaimed.
SHORTFALL_SHIFT = 16
# An UTXO's GetBogoSize is 50 + script size; the synthetic figure assumes 24-byte scripts.
BOGO_PER_TXOUT = 74
# A block's typical fee rate (sat/vB): 256 quantiles of a log-normal around 10 sat/vB,
# picked by a byte of the block's hash.
FEERATES = tuple(max(1, min(1000, round(math.exp(2.3 + 0.8 * NormalDist().inv_cdf(
    (i + 0.5) / 256))))) for i in range(256))
# Fee caps: a payout-funded transaction pays at most 1/8 of its payout, a transaction
# funded by a reserved output at most half of it.
PAYOUT_FEE_DIVISOR, RESERVED_FEE_DIVISOR = 8, 2
# The reward output's kinds (uniform) and the OP_RETURN payload sizes (uniform 4..40).
REWARD_KINDS = ("p2wpkh", "p2pkh", "p2tr")
OP_DATA_SIZES = (4, 40)


def _expected(size_of: Any) -> int:
    """Σ weight * size over OUTPUT_KINDS: an expected size in 1/KIND_WEIGHT bytes."""
    return sum(w * size_of(kind) for kind, w in zip(OUTPUT_KINDS, OUTPUT_WEIGHTS, strict=True))


def _spend_base(kind: str) -> int:
    script_sig = SPEND_SHAPE[kind][0]
    return 36 + compact_size_len(script_sig) + script_sig + 4


def _spend_witness(kind: str) -> int:
    items = SPEND_SHAPE[kind][1]
    return compact_size_len(len(items)) + sum(compact_size_len(n) + n for n in items)


# Expected sizes of the plan's outputs and inputs, for aggregate-only estimates (scaled by
# KIND_WEIGHT: integers, no floats).
KIND_WEIGHT = sum(OUTPUT_WEIGHTS)
OUT_BYTES = _expected(lambda k: 8 + 1 + SCRIPT_SIZE[k])
IN_BASE_BYTES = _expected(_spend_base)
IN_WITNESS_BYTES = _expected(_spend_witness)
SEGWIT_SHARE = _expected(lambda k: 1 if SPEND_SHAPE[k][1] else 0)
UTXO_BYTES = _expected(lambda k: 8 + 1 + SCRIPT_SIZE[k] + 41)
_OP_SCRIPT = 2 + sum(OP_DATA_SIZES) // 2
OP_BYTES = 8 + 1 + _OP_SCRIPT
OP_UTXO_BYTES = OP_BYTES + 41
REWARD_UTXO_BYTES = KIND_WEIGHT * sum(8 + 1 + SCRIPT_SIZE[k] + 41
                                      for k in REWARD_KINDS) // len(REWARD_KINDS)
COMMITMENT_UTXO_BYTES = 8 + 1 + SCRIPT_SIZE["commitment"] + 41
GENESIS_UTXO_BYTES = 8 + 1 + SCRIPT_SIZE["p2pk"] + 41
# Estimated spread of per-transaction figures around their average, in percent:
# (minimum, median, maximum); fee rates (minimum, p10, p25, p50, p75, p90, maximum).
FEE_SPREAD = (15, 80, 500)
SIZE_SPREAD = (60, 95, 250)
FEERATE_SPREAD = (20, 39, 56, 84, 125, 180, 400)


_PACK = {n: struct.Struct(f">{n}q").pack for n in range(1, 8)}


def digest(seed: int, tag: bytes, *numbers: int) -> bytes:
    return hashlib.sha256(tag + _PACK[len(numbers) + 1](seed, *numbers)).digest()


def stream(seed: int, tag: bytes, *numbers: int) -> random.Random:
    """A reproducible random stream for one purpose and one (height, generation)."""
    return random.Random(int.from_bytes(digest(seed, tag, *numbers), "big"))  # noqa: S311


@dataclass(frozen=True, slots=True)
class SyntheticParams:
    seed: int = 7
    network: str = "main"
    halving_interval: int = 210_000
    # Payouts of block b are spent by block b + maturity (so blocks 0..maturity have only
    # their coinbase, like a fresh regtest chain).
    maturity: int = 100
    # Transactions per block: 1 + min((h - maturity - 1) // tx_growth + 1, max_txs) + 0..2.
    tx_growth: int = 10
    max_txs: int = 250
    genesis_time: int = 1_600_000_000
    block_interval: int = 600

    def __post_init__(self) -> None:
        if self.maturity < 1 or self.tx_growth < 1:
            raise ValueError("maturity and tx_growth must be at least 1")
        if not 1 <= self.max_txs <= 20_000:
            raise ValueError("max_txs must be 1..20000")


@dataclass(frozen=True, slots=True)
class GenTables:
    """One generation's per-height pattern (index ``h % PERIOD``) and its prefix sums."""

    spread: tuple[int, ...]
    extra_chain: tuple[int, ...]
    extra_spendable: tuple[int, ...]
    op_count: tuple[int, ...]
    op_mult: tuple[int, ...]
    shortfall_mult: tuple[int, ...]
    prefix: dict[str, tuple[int, ...]]

    @staticmethod
    def build(seed: int, generation: int) -> GenTables:
        rng = stream(seed, b"tables", generation)
        spread = tuple(rng.choices((0, 1, 2), (6, 3, 1), k=PERIOD))
        extra_chain = tuple(rng.choices((0, 1, 2, 3), (5, 3, 1, 1), k=PERIOD))
        extra_spendable = tuple(rng.choices((0, 1, 2, 3, 4), (4, 3, 2, 1, 1), k=PERIOD))
        op_count = tuple(rng.choices((0, 1, 2), (80, 18, 2), k=PERIOD))
        op_mult = tuple(0 if count == 0 or rng.random() < 0.75 else rng.randint(1, 100)
                        for count in op_count)
        shortfall = tuple(0 if rng.random() < 0.96 else rng.randint(1, 50)
                          for _ in range(PERIOD))
        prefix = {}
        for name, table in (("spread", spread), ("extra_chain", extra_chain),
                            ("extra_spendable", extra_spendable), ("op_mult", op_mult),
                            ("shortfall_mult", shortfall)):
            sums = [0]
            for value in table:
                sums.append(sums[-1] + value)
            prefix[name] = tuple(sums)
        return GenTables(spread, extra_chain, extra_spendable, op_count, op_mult, shortfall,
                         prefix)

    def range_sum(self, name: str, lo: int, hi: int) -> int:
        """Σ table[h % PERIOD] for lo <= h <= hi."""
        if hi < lo:
            return 0
        sums = self.prefix[name]

        def upto(n: int) -> int:  # Σ over 0 <= h < n
            return (n // PERIOD) * sums[PERIOD] + sums[n % PERIOD]

        return upto(hi + 1) - upto(lo)


class Shape:
    """The closed-form per-height figures of one chain's parameters."""

    def __init__(self, params: SyntheticParams) -> None:
        self.params = params
        self.maturity, self.tx_growth, self.max_txs = (params.maturity, params.tx_growth,
                                                       params.max_txs)
        self.chain_from = self.extra_chain_from()

    def subsidy(self, height: int) -> int:
        return subsidy(height, self.params.halving_interval)

    def trend(self, height: int) -> int:
        """Payout-funded transactions of block ``height`` (0 up to the maturity)."""
        if height <= self.maturity:
            return 0
        return min((height - self.maturity - 1) // self.tx_growth + 1, self.max_txs)

    def payouts(self, height: int) -> int:
        """Outputs of block ``height``'s coinbase that block ``height + maturity`` spends."""
        return self.trend(height + self.params.maturity)

    def trend_sum(self, lo: int, hi: int) -> int:
        """Σ trend(h) for lo <= h <= hi, in closed form."""
        if hi < lo:
            return 0
        return self._trend_upto(hi + 1) - self._trend_upto(lo)

    def _trend_upto(self, n: int) -> int:
        p = self.params
        count = n - p.maturity - 1  # values j = h - maturity - 1 in 0..count-1
        if count <= 0:
            return 0
        k, cap = p.tx_growth, p.max_txs
        plateau = (cap - 1) * k  # from j = plateau on, the trend stays at cap
        if count <= plateau:
            q, r = divmod(count, k)
            return k * q * (q + 1) // 2 + r * (q + 1)
        return k * (cap - 1) * cap // 2 + (count - plateau) * cap

    def extra_chain_from(self) -> int:
        """Extra in-block spends need trend >= 4 (distinct payout-funded transactions)."""
        p = self.params
        return p.maturity + 1 + 3 * p.tx_growth if p.max_txs >= 4 else 1 << 62

    def subsidy_sum(self, lo: int, hi: int) -> int:
        total, interval = 0, self.params.halving_interval
        height = lo
        while height <= hi:
            era = height // interval
            end = min(hi, (era + 1) * interval - 1)
            value = 0 if era >= 64 else INITIAL_SUBSIDY >> era
            if value == 0:
                break
            total += value * (end - height + 1)
            height = end + 1
        return total

    def scaled_sum(self, tables: GenTables, name: str, lo: int, hi: int, lag: int,
                   shift: int) -> int:
        """Σ table[h % PERIOD] * (subsidy(h - lag) >> shift) for lo <= h <= hi."""
        total, interval = 0, self.params.halving_interval
        height = lo
        while height <= hi:
            era = (height - lag) // interval
            end = min(hi, (era + 1) * interval + lag - 1)
            value = (0 if era >= 64 else INITIAL_SUBSIDY >> era) >> shift
            if value == 0:
                break
            total += value * tables.range_sum(name, height, end)
            height = end + 1
        return total


@dataclass(frozen=True, slots=True)
class OutPlan:
    kind: str
    value: int
    data: bytes = b""  # an OP_RETURN's payload

    @property
    def script_size(self) -> int:
        if self.kind == "op_return":
            return 2 + len(self.data)
        return SCRIPT_SIZE[self.kind]


@dataclass(frozen=True, slots=True)
class InPlan:
    kind: str  # the spent output's kind
    value: int
    # Either the index of a payout of block h - maturity (coinbase output payout + 1) ...
    payout: int | None = None
    # ... or (transaction index, output index) of an earlier transaction in this block.
    chained: tuple[int, int] | None = None


@dataclass(frozen=True)  # no slots: ``sizes`` is cached in the instance dict
class TxPlan:
    inputs: tuple[InPlan, ...]
    outputs: tuple[OutPlan, ...]
    fee: int

    @cached_property
    def sizes(self) -> tuple[int, int]:
        """(base size, total size) of the transaction this plan builds to."""
        base = 4 + compact_size_len(len(self.inputs)) + compact_size_len(len(self.outputs)) + 4
        witness = 0
        segwit = False
        for txin in self.inputs:
            script_sig, items = SPEND_SHAPE[txin.kind]
            base += 36 + compact_size_len(script_sig) + script_sig + 4
            witness += compact_size_len(len(items)) + sum(compact_size_len(n) + n
                                                          for n in items)
            segwit = segwit or bool(items)
        for out in self.outputs:
            base += 8 + compact_size_len(out.script_size) + out.script_size
        return base, base + (2 + witness if segwit else 0)

    @property
    def has_witness(self) -> bool:
        return any(SPEND_SHAPE[txin.kind][1] for txin in self.inputs)

    @property
    def weight(self) -> int:
        base, total = self.sizes
        return 3 * base + total


@dataclass(frozen=True, slots=True)
class BlockPlan:
    height: int
    generation: int
    subsidy: int
    coinbase: tuple[OutPlan, ...]  # reward, payouts..., witness commitment (if any)
    txs: tuple[TxPlan, ...]
    shortfall: int
    op_value: int

    @property
    def fees(self) -> int:
        return sum(tx.fee for tx in self.txs)

    @property
    def total_out(self) -> int:
        return sum(out.value for tx in self.txs for out in tx.outputs)

    @property
    def coinbase_value(self) -> int:
        return sum(out.value for out in self.coinbase)


def payout_plan(shape: Shape, height: int, generation: int) -> list[OutPlan]:
    """The payouts of block ``height``'s coinbase: kinds from their own stream (so the
    spending block needs nothing else of this block), values a fixed share of the subsidy
    (at most half of it in all)."""
    count = shape.payouts(height)
    if count == 0:
        return []
    kinds = stream(shape.params.seed, b"payouts", height, generation).choices(
        OUTPUT_KINDS, OUTPUT_WEIGHTS, k=count)
    base = shape.subsidy(height) // (4 * count)
    return [OutPlan(kind, base * (1 + (j + height) % 2)) for j, kind in enumerate(kinds)]


def _split(rng: random.Random, total: int, parts: int) -> list[int]:
    if parts == 1:
        return [total]
    cuts = sorted(rng.randint(0, total) for _ in range(parts - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]


class Figures(NamedTuple):
    """A block's closed-form figures: everything getblockstats compares, and what the plan
    must add up to (synthetic_plan's docstring)."""

    height: int
    generation: int
    subsidy: int
    funded: int  # transactions spending a payout of block height - maturity
    non_coinbase: int  # non-coinbase transactions: funded + the ones funded by reserved outputs
    payouts: int  # payouts this block's coinbase creates (spent at height + maturity)
    extra: int  # second inputs of payout-funded transactions (in-block spends)
    # Values of the in-block spends: the ``extra`` second inputs first, then one per
    # transaction funded by a reserved output.
    reserved: tuple[int, ...]
    spendable_outs: int  # non-coinbase outputs other than OP_RETURN
    op_count: int  # OP_RETURN outputs
    op_value: int
    shortfall: int  # what the coinbase leaves unclaimed
    payout_value: int  # Σ the payouts spent
    fees: int
    feerate: int  # the block's typical fee rate, sat/vB
    # Estimates (aggregate-only stats, and the fee total): non-coinbase size, weight and
    # segwit transactions.
    est_size: int
    est_weight: int
    est_swtxs: int

    @property
    def txs(self) -> int:
        return self.non_coinbase + 1

    @property
    def ins(self) -> int:
        return self.funded + len(self.reserved)

    @property
    def coinbase_outs(self) -> int:
        """Reward, payouts, and the witness commitment of a block with transactions."""
        return 1 + self.payouts + (1 if self.non_coinbase else 0)

    @property
    def outs(self) -> int:
        return self.coinbase_outs + self.spendable_outs + self.op_count

    @property
    def unspendable_outs(self) -> int:
        """OP_RETURN outputs and the witness commitment."""
        return self.op_count + (1 if self.non_coinbase else 0)

    @property
    def total_in(self) -> int:
        return self.payout_value + sum(self.reserved)

    @property
    def total_out(self) -> int:
        return self.total_in - self.fees

    @property
    def coinbase_value(self) -> int:
        return self.subsidy + self.fees - self.shortfall


def block_figures(shape: Shape, tables: GenTables, height: int, generation: int) -> Figures:
    """Block (height, generation)'s figures in O(1): the trend, the tables, the subsidy
    and one hash."""
    p = shape.params
    interval, maturity = p.halving_interval, p.maturity
    era = height // interval
    block_subsidy = 0 if era >= 64 else INITIAL_SUBSIDY >> era
    payouts = shape.trend(height + maturity)
    if height == 0:
        return Figures(0, generation, block_subsidy, 0, 0, payouts, 0, (), 0, 0, 0, 0, 0,
                       0, 0, 0, 0, 0)
    slot = height % PERIOD
    shortfall = tables.shortfall_mult[slot] * (block_subsidy >> SHORTFALL_SHIFT)
    funded = shape.trend(height)
    if not funded:
        return Figures(height, generation, block_subsidy, 0, 0, payouts, 0, (), 0, 0, 0,
                       shortfall, 0, 0, 0, 0, 0, 0)
    spread = tables.spread[slot]
    count = funded + spread
    extra = tables.extra_chain[slot] if height >= shape.chain_from else 0
    source = height - maturity
    era = source // interval
    source_subsidy = 0 if era >= 64 else INITIAL_SUBSIDY >> era
    # payout_plan: payout j of block ``source`` is worth base * (1 + (j + source) % 2).
    base = source_subsidy // (4 * funded)
    doubled = (funded + source % 2) // 2
    payout_value = base * (funded + doubled)
    hashed = digest(p.seed, b"figures", height, generation)
    unit = base >> 4  # reserved outputs are worth base/32 .. base/16
    reserved = tuple((unit * (256 + hashed[1 + k])) >> 9 for k in range(extra + spread))
    op_count = tables.op_count[slot]
    op_value = tables.op_mult[slot] * (source_subsidy >> OP_VALUE_SHIFT)
    ins = funded + extra + spread
    spendable_outs = count + funded + tables.extra_spendable[slot] + extra + spread
    # Expected sizes: version, counts and lock time; inputs; outputs; a segwit
    # transaction's marker, flag and witnesses.
    swtxs = min(count, (count * SEGWIT_SHARE + (ins - count) * SEGWIT_SHARE
                        * (KIND_WEIGHT - SEGWIT_SHARE) // KIND_WEIGHT) // KIND_WEIGHT)
    stripped = (count * 10 * KIND_WEIGHT + ins * IN_BASE_BYTES + spendable_outs * OUT_BYTES
                + op_count * OP_BYTES * KIND_WEIGHT) // KIND_WEIGHT
    witness = swtxs * 2 + ins * IN_WITNESS_BYTES // KIND_WEIGHT
    weight = 4 * stripped + witness
    feerate = FEERATES[hashed[0]]
    cap = ((funded - doubled) * (base // PAYOUT_FEE_DIVISOR)
           + doubled * (2 * base // PAYOUT_FEE_DIVISOR)
           + sum(value // RESERVED_FEE_DIVISOR for value in reserved[extra:]))
    fees = min(feerate * ((weight + 3) // 4), cap)
    return Figures(height, generation, block_subsidy, funded, count, payouts, extra, reserved,
                   spendable_outs, op_count, op_value, shortfall, payout_value, fees, feerate,
                   stripped + witness, weight, swtxs)


def _spread(total: int, n: int, spread: tuple[int, int, int]) -> tuple[int, int, int]:
    """(minimum, median, maximum) of ``n`` non-negative integers summing to ``total``,
    shaped by ``spread`` (percent of the average): min <= median <= average <= max,
    n * min <= total <= n * max, and a maximum the others leave room for; the median of
    two is their sum halved, truncated, as Core computes it."""
    if n == 1:
        return total, total, total
    average = total // n
    low = average * spread[0] // 100
    if n == 2:
        return low, total // 2, total - low
    high = max(-(-total // n), min(average * spread[2] // 100, total - (n - 1) * low))
    return low, average * spread[1] // 100, high


def estimated_block_stats(figures: Figures, blockhash: str, time: int, mediantime: int
                          ) -> dict[str, Any]:
    """getblockstats from a block's figures alone (aggregate-only chains): counts, values,
    fees and the identity exact, the rest estimated (module docstring)."""
    f = figures
    n = f.non_coinbase
    ins, outs = f.ins, f.outs
    if not f.height:
        utxo_inc, utxo_inc_actual, utxos = GENESIS_UTXO_BYTES, 0, 0
    else:
        spendable = (REWARD_UTXO_BYTES + (f.payouts + f.spendable_outs - ins) * UTXO_BYTES
                     ) // KIND_WEIGHT
        utxo_inc_actual = spendable
        utxo_inc = spendable + f.op_count * OP_UTXO_BYTES + (
            COMMITMENT_UTXO_BYTES if n else 0)
        utxos = outs - f.unspendable_outs - ins
    if n:
        fees, size, weight = f.fees, f.est_size, f.est_weight
        minfee, medianfee, maxfee = _spread(fees, n, FEE_SPREAD)
        mintxsize, mediantxsize, maxtxsize = _spread(size, n, SIZE_SPREAD)
        avgfeerate = fees * 4 // weight
        # One transaction: its own fee rate everywhere.
        rates = [avgfeerate * (100 if n == 1 else k) // 100 for k in FEERATE_SPREAD]
        swtxs = f.est_swtxs
        swsize, swweight = size * swtxs // n, weight * swtxs // n
        total_out = f.total_out
    else:
        fees = size = weight = minfee = medianfee = maxfee = mintxsize = mediantxsize = 0
        maxtxsize = avgfeerate = swtxs = swsize = swweight = total_out = 0
        rates = [0] * 7
    return {
        "avgfee": fees // n if n else 0,
        "avgfeerate": avgfeerate,
        "avgtxsize": size // n if n else 0,
        "blockhash": blockhash,
        "feerate_percentiles": rates[1:6],
        "height": f.height,
        "ins": ins,
        "maxfee": maxfee,
        "maxfeerate": rates[6],
        "maxtxsize": maxtxsize,
        "medianfee": medianfee,
        "mediantime": mediantime,
        "mediantxsize": mediantxsize,
        "minfee": minfee,
        "minfeerate": rates[0],
        "mintxsize": mintxsize,
        "outs": outs,
        "subsidy": f.subsidy,
        "swtotal_size": swsize,
        "swtotal_weight": swweight,
        "swtxs": swtxs,
        "time": time,
        "total_out": total_out,
        "total_size": size,
        "total_weight": weight,
        "totalfee": fees,
        "txs": n + 1,
        "utxo_increase": outs - ins,
        "utxo_increase_actual": utxos,
        "utxo_size_inc": utxo_inc,
        "utxo_size_inc_actual": utxo_inc_actual,
    }


def plan_block(shape: Shape, figures: Figures, spent_payouts: Sequence[OutPlan]) -> BlockPlan:
    """The plan of a block with these figures; ``spent_payouts`` are the payouts of block
    ``height - maturity`` on this block's own ancestry. Its sums are the figures'."""
    f = figures
    height, generation = f.height, f.generation
    if height == 0:
        return BlockPlan(0, generation, f.subsidy, (OutPlan("p2pk", f.subsidy),), (), 0, 0)
    rng = stream(shape.params.seed, b"block", height, generation)
    txs = _plan_txs(rng, f, spent_payouts) if f.funded else []
    payouts = payout_plan(shape, height, generation)
    reward = f.coinbase_value - sum(out.value for out in payouts)
    coinbase = [OutPlan(rng.choice(REWARD_KINDS), reward), *payouts]
    if txs:
        coinbase.append(OutPlan("commitment", 0))
    plan = BlockPlan(height, generation, f.subsidy, tuple(coinbase), tuple(txs), f.shortfall,
                     f.op_value)
    assert plan.fees == f.fees and plan.total_out == f.total_out, (height, generation)
    return plan


def _plan_txs(rng: random.Random, f: Figures, spent_payouts: Sequence[OutPlan]
              ) -> list[TxPlan]:
    funded, count, extra = f.funded, f.non_coinbase, f.extra
    assert len(spent_payouts) == funded
    # In-block spend k: its spender (payout-funded second inputs first, then the
    # transactions funded by one reserved output) and the earlier payout-funded
    # transaction that reserves the output, distinct ones when it can.
    spenders = sorted(rng.sample(range(1, funded), extra)) + list(range(funded, count))
    reserves: list[list[int]] = [[] for _ in range(count)]
    producers = []
    for k, spender in enumerate(spenders):
        limit = min(spender, funded)
        producer = rng.randrange(limit)
        for _ in range(8):
            if not reserves[producer]:
                break
            producer = rng.randrange(limit)
        reserves[producer].append(k)
        producers.append(producer)
    reserved_kinds = rng.choices(OUTPUT_KINDS, OUTPUT_WEIGHTS, k=len(spenders))
    free = [1] * count
    for _ in range(f.spendable_outs - count - len(spenders)):
        free[rng.randrange(count)] += 1
    ops = [0] * count
    for _ in range(f.op_count):
        ops[rng.randrange(funded)] += 1
    inputs: list[list[InPlan]] = [[] for _ in range(count)]
    for i, payout in enumerate(spent_payouts):
        inputs[i].append(InPlan(payout.kind, payout.value, payout=i))
    for k, (spender, producer) in enumerate(zip(spenders, producers, strict=True)):
        out_index = free[producer] + reserves[producer].index(k)
        inputs[spender].append(InPlan(reserved_kinds[k], f.reserved[k],
                                      chained=(producer, out_index)))
    # Shapes first (sizes do not depend on values), then fees by size and drawn fee rate.
    shapes: list[tuple[list[str], list[bytes]]] = []
    weights, caps = [], []
    for i in range(count):
        kinds = rng.choices(OUTPUT_KINDS, OUTPUT_WEIGHTS, k=free[i])
        kinds += [reserved_kinds[k] for k in reserves[i]]
        data = [rng.randbytes(rng.randint(*OP_DATA_SIZES)) for _ in range(ops[i])]
        shapes.append((kinds, data))
        draft = TxPlan(tuple(inputs[i]), tuple(OutPlan(kind, 0) for kind in kinds)
                       + tuple(OutPlan("op_return", 0, d) for d in data), 0)
        rate = max(1, int(rng.lognormvariate(0.0, 0.6) * 1000))
        weights.append(rate * ((draft.weight + 3) // 4))
        caps.append(inputs[i][0].value // (PAYOUT_FEE_DIVISOR if i < funded
                                           else RESERVED_FEE_DIVISOR))
    total_weight = sum(weights)
    fees = [min(cap, f.fees * w // total_weight) for w, cap in zip(weights, caps, strict=True)]
    left = f.fees - sum(fees)
    for i in range(count):
        if not left:
            break
        more = min(left, caps[i] - fees[i])
        fees[i] += more
        left -= more
    assert left == 0, (f.height, f.generation)
    txs = []
    op_left = f.op_value
    for i, (kinds, data) in enumerate(shapes):
        op_outputs = []
        for payload in data:
            op_outputs.append(OutPlan("op_return", op_left, payload))
            op_left = 0
        kept = [f.reserved[k] for k in reserves[i]]
        rest = (sum(txin.value for txin in inputs[i]) - fees[i] - sum(kept)
                - sum(out.value for out in op_outputs))
        assert rest >= 0, (f.height, f.generation, i)
        values = _split(rng, rest, free[i]) + kept
        txs.append(TxPlan(tuple(inputs[i]), tuple(OutPlan(kind, value) for kind, value
                                                  in zip(kinds, values, strict=True))
                          + tuple(op_outputs), fees[i]))
    return txs
