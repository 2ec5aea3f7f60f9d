"""The synthetic chain's arithmetic: what every block contains, decided without building
it, and the running totals of the UTXO set in closed form.

A block is identified by its height ``h`` and its *generation* ``e`` (0 for the original
chain, one more per reorg). Everything about it is derived from ``(seed, h, e)``:

- per-height figures that enter running totals (UTXO count, OP_RETURN values, unclaimed
  rewards) come from a linear trend plus per-generation tables of period ``PERIOD``, so
  that a total over 0..H costs O(eras + reorgs), not O(H);
- the rest (which output each input spends, fees, script types, values) comes from a
  per-block random stream, in a *plan*: counts, values and sizes of every transaction,
  without scripts, signatures or hashes. ``getblockstats`` of an aggregate-only chain is
  computed from the plan; a full chain builds the block from the same plan, so both agree.

Money flow (every value is known to the block that spends it, nothing needs history):
block ``b``'s coinbase pays its reward output plus ``payouts(b)`` outputs worth a fixed
share of the subsidy; block ``b + maturity`` spends exactly those payouts, one per
transaction, and further inputs spend outputs created earlier in the same block.
"""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from devstack.btc.blockstats import StatsOutput, StatsTx
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


def digest(seed: int, tag: bytes, *numbers: int) -> bytes:
    return hashlib.sha256(tag + struct.pack(f">{len(numbers) + 1}q", seed, *numbers)).digest()


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

    def subsidy(self, height: int) -> int:
        return subsidy(height, self.params.halving_interval)

    def trend(self, height: int) -> int:
        """Payout-funded transactions of block ``height`` (0 up to the maturity)."""
        p = self.params
        if height <= p.maturity:
            return 0
        return min((height - p.maturity - 1) // p.tx_growth + 1, p.max_txs)

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

    def stats_view(self) -> list[StatsTx]:
        view = [StatsTx(True, tuple(StatsOutput(o.value, o.script_size, o.kind in
                                                ("commitment", "op_return"))
                                    for o in self.coinbase), (), 0, 0, False)]
        for tx in self.txs:
            outputs = tuple(StatsOutput(o.value, o.script_size, o.kind == "op_return")
                            for o in tx.outputs)
            prevouts = tuple((i.value, SCRIPT_SIZE[i.kind]) for i in tx.inputs)
            view.append(StatsTx(False, outputs, prevouts, tx.sizes[1], tx.weight,
                                tx.has_witness))
        return view


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


def plan_block(shape: Shape, tables: GenTables, height: int, generation: int,
               spent_payouts: Sequence[OutPlan]) -> BlockPlan:
    """The plan of block (height, generation); ``spent_payouts`` are the payouts of block
    ``height - maturity`` on this block's own ancestry."""
    p = shape.params
    block_subsidy = shape.subsidy(height)
    if height == 0:
        return BlockPlan(0, generation, block_subsidy, (OutPlan("p2pk", block_subsidy),), (),
                         0, 0)
    rng = stream(p.seed, b"block", height, generation)
    slot = height % PERIOD
    shortfall = tables.shortfall_mult[slot] * (block_subsidy >> SHORTFALL_SHIFT)
    txs: list[TxPlan] = []
    op_value = 0
    funded = shape.trend(height)
    if funded:
        assert len(spent_payouts) == funded
        count = funded + tables.spread[slot]
        extra = tables.extra_chain[slot] if height >= shape.extra_chain_from() else 0
        extra_spends = set(rng.sample(range(1, funded), extra)) if extra else set()
        outputs_per_tx = [1] * count
        for _ in range(funded + tables.extra_spendable[slot]):
            outputs_per_tx[rng.randrange(count)] += 1
        op_at = [rng.randrange(funded) for _ in range(tables.op_count[slot])]
        op_value = tables.op_mult[slot] * (shape.subsidy(height - p.maturity)
                                           >> OP_VALUE_SHIFT)
        op_left = op_value
        available: list[tuple[int, int, OutPlan]] = []
        for i in range(count):
            inputs = []
            if i < funded:
                payout = spent_payouts[i]
                inputs.append(InPlan(payout.kind, payout.value, payout=i))
            if i >= funded or i in extra_spends:
                tx_index, out_index, spent = available.pop(rng.randrange(len(available)))
                inputs.append(InPlan(spent.kind, spent.value, chained=(tx_index, out_index)))
            kinds = rng.choices(OUTPUT_KINDS, OUTPUT_WEIGHTS, k=outputs_per_tx[i])
            op_outputs = []
            for _ in range(op_at.count(i)):
                op_outputs.append(OutPlan("op_return", op_left,
                                          rng.randbytes(rng.randint(4, 40))))
                op_left = 0
            draft = TxPlan(tuple(inputs),
                           tuple(OutPlan(k, 0) for k in kinds) + tuple(op_outputs), 0)
            vsize = (draft.weight + 3) // 4
            feerate = max(1, min(int(rng.lognormvariate(2.3, 1.0)), 1000))
            in_total = sum(txin.value for txin in inputs)
            op_total = sum(out.value for out in op_outputs)
            fee = max(0, min(feerate * vsize, in_total - op_total))
            values = _split(rng, in_total - op_total - fee, len(kinds))
            spendable = [OutPlan(k, v) for k, v in zip(kinds, values, strict=True)]
            txs.append(TxPlan(tuple(inputs), tuple(spendable) + tuple(op_outputs), fee))
            available.extend((i, n, out) for n, out in enumerate(spendable))
    fees = sum(tx.fee for tx in txs)
    payouts = payout_plan(shape, height, generation)
    reward = block_subsidy + fees - shortfall - sum(out.value for out in payouts)
    reward_kind = rng.choice(("p2wpkh", "p2pkh", "p2tr"))
    coinbase = [OutPlan(reward_kind, reward), *payouts]
    if txs:
        coinbase.append(OutPlan("commitment", 0))
    return BlockPlan(height, generation, block_subsidy, tuple(coinbase), tuple(txs),
                     shortfall, op_value)
