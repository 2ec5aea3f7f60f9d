"""``SyntheticChain``: a deterministic chain of any length, generated lazily per block.

Block ``h`` of generation ``e`` depends only on ``(seed, h, e)`` and its ancestry
(synthetic_plan.py); nothing is kept per height, only small LRU caches. A reorg starts a
new generation from the fork height; generations form a tree, and the main chain is the
active generation's ancestry.

What is real and what is not:
- transactions are real serializations: txid/wtxid are their double SHA-256, sizes and
  weights are what Core would compute, prevouts and fees are consistent everywhere;
- block hashes are *derived*, not the double SHA-256 of the header: the 32 bytes carry
  (height, generation) XOR-masked by a hash of the rest, so any hash is resolved in O(1).
  Merkle roots, nonces and witness commitments are derived too; there is no proof of work.
  A header's bytes (``getblockheader <hash> false``) link to the right previous hash but
  do not hash to the block's hash.

``aggregate_only=True`` computes getblockstats from the block's closed-form figures
(synthetic_plan.block_figures: no plan, no scripts, a couple of hashes), in O(1) whatever
the block's size, so that 10**6 heights answer in tens of microseconds each. Identical to
a full chain's: ``height``, ``blockhash``, ``time``, ``mediantime``, ``txs``, ``ins``,
``outs``, ``total_out``, ``totalfee``, ``avgfee``, ``subsidy``, ``utxo_increase``,
``utxo_increase_actual`` (and gettxoutsetinfo, and ``ingested_figures``). *Estimated*
from the counts instead of the built block's: ``total_size``, ``total_weight``,
``swtxs``, ``swtotal_size``, ``swtotal_weight``, ``avgtxsize``, ``mintxsize``,
``maxtxsize``, ``mediantxsize``, ``minfee``, ``maxfee``, ``medianfee``, ``avgfeerate``,
``minfeerate``, ``maxfeerate``, ``feerate_percentiles``, ``utxo_size_inc`` and
``utxo_size_inc_actual`` (self-consistent: min <= median <= max, averages as Core rounds
them, non-decreasing percentiles; synthetic_plan.estimated_block_stats). getblock builds
the block from the plan in both modes (cost grows with the block's transaction count, at
most ``max_txs`` + 3).

``time`` is a closed form of the height (600 s apart plus a jitter below 600 s), so
block times strictly increase and the median of the last 11 is block ``height - 5``'s.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from devstack.btc.blockstats import BlockIdentity, compute_block_stats
from devstack.btc.chain import (
    BlockInfo,
    BtcChain,
    ChainTip,
    Coin,
    FullBlock,
    HeaderInfo,
    IndexStats,
    Unspendables,
    UtxoScan,
    check_reorg,
    stats_view,
)
from devstack.btc.codec import ZERO_HASH, push_data, push_int, sha256
from devstack.btc.consensus import HALVING_INTERVAL, POW_LIMIT_BITS, work
from devstack.btc.synthetic_plan import (
    BOGO_PER_TXOUT,
    OP_VALUE_SHIFT,
    SHORTFALL_SHIFT,
    BlockPlan,
    Figures,
    GenTables,
    OutPlan,
    Shape,
    SyntheticParams,
    block_figures,
    digest,
    estimated_block_stats,
    payout_plan,
    plan_block,
)
from devstack.btc.transactions import Block, Header, Tx, TxIn, TxOut, make_tx

MAX_GENERATIONS = 0xFFFF
# Block hashes remembered with their (height, generation) both ways, so that a hash just
# computed costs a lookup to compute again or to decode (getblockhash h, then
# getblockstats h or of the hash), not two or three SHA-256.
HASH_MEMORY = 8192


@dataclass(slots=True)
class _Generation:
    fork: int  # lowest height of its own blocks
    parent: int  # the generation below the fork (-1 for generation 0)
    top: int  # highest height of its own blocks (the tip while active)


class _Lru:
    """A small thread-safe-enough LRU (callers hold the chain lock)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[Any, Any] = OrderedDict()

    def get(self, key: Any) -> Any:
        value = self.items.get(key)
        if value is not None:
            self.items.move_to_end(key)
        return value

    def put(self, key: Any, value: Any) -> None:
        self.items[key] = value
        self.items.move_to_end(key)
        while len(self.items) > self.size:
            self.items.popitem(last=False)


def _script(kind: str, material: bytes, data: bytes = b"") -> bytes:
    if kind == "p2pkh":
        return b"\x76\xa9\x14" + material[:20] + b"\x88\xac"
    if kind == "p2sh":
        return b"\xa9\x14" + material[:20] + b"\x87"
    if kind == "p2wpkh":
        return b"\x00\x14" + material[:20]
    if kind == "p2wsh":
        return b"\x00\x20" + material[:32]
    if kind == "p2tr":
        return b"\x51\x20" + material[:32]
    if kind == "p2pk":
        return b"\x21\x02" + material[:32] + b"\xac"
    if kind == "commitment":
        return b"\x6a\x24\xaa\x21\xa9\xed" + material[:32]
    if kind == "op_return":
        return b"\x6a" + push_data(data)
    raise ValueError(f"unknown output kind {kind}")


def _signature(material: bytes) -> bytes:
    """A well-formed 72-byte signature (strict DER: a 33-byte r with a zero pad, a 32-byte
    low-bit s, SIGHASH_ALL), not a valid one."""
    r = b"\x00" + bytes((material[0] | 0x80,)) + material[1:32]
    s = bytes((material[32] & 0x7F | 0x01,)) + material[33:64]
    return b"\x30\x45\x02\x21" + r + b"\x02\x20" + s + b"\x01"


def _spend(kind: str, material: bytes) -> tuple[bytes, tuple[bytes, ...]]:
    """scriptSig and witness spending an output of ``kind`` (sizes as SPEND_SHAPE)."""
    signature = _signature(material + sha256(material))
    pubkey = b"\x02" + material[:32]
    if kind == "p2pkh":
        return push_data(signature) + push_data(pubkey), ()
    if kind == "p2wpkh":
        return b"", (signature, pubkey)
    if kind == "p2sh":
        return push_data(b"\x00\x14" + material[:20]), (signature, pubkey)
    if kind == "p2wsh":
        return b"", (signature, b"\x21" + pubkey + b"\xac")
    if kind == "p2tr":
        return b"", (material[:32] + sha256(material)[:32],)
    if kind == "p2pk":
        return push_data(signature), ()
    raise ValueError(f"cannot spend an output of kind {kind}")


class SyntheticChain(BtcChain):
    def __init__(self, length: int, *, seed: int = 7, network: str = "main",
                 halving_interval: int | None = None, aggregate_only: bool = False,
                 maturity: int = 100, tx_growth: int = 10, max_txs: int = 250,
                 genesis_time: int = 1_600_000_000, name: str | None = None) -> None:
        if length < 1:
            raise ValueError("length must be at least 1 (the genesis block)")
        interval = halving_interval or HALVING_INTERVAL.get(network, 210_000)
        kind = "synthetic-aggregate" if aggregate_only else "synthetic"
        super().__init__(name=name or f"{kind}:{length}", network=network,
                         halving_interval=interval)
        self.params = SyntheticParams(seed, network, interval, maturity, tx_growth, max_txs,
                                      genesis_time)
        self.seed = seed
        self.aggregate_only = aggregate_only
        self.length = length
        self.shape = Shape(self.params)
        self.bits = POW_LIMIT_BITS[network]
        self._work = work(self.bits)
        self._tables: dict[int, GenTables] = {}
        self._plans = _Lru(512)
        self._payouts = _Lru(512)
        self._blocks = _Lru(16)
        self._coinbases = _Lru(512)
        self._stats = _Lru(4096)
        # Hashes block_hash computed, both ways; emptied when full.
        self._hashes: dict[str, tuple[int, int]] = {}
        self._hash_of: dict[tuple[int, int], str] = {}
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self._gens = [_Generation(0, -1, self.length - 1)]
            self._active = 0

    # -- generations and hashes ------------------------------------------------------------

    def generation_at(self, height: int, generation: int) -> int:
        """The generation of the block at ``height`` on ``generation``'s ancestry."""
        while self._gens[generation].fork > height:
            generation = self._gens[generation].parent
        return generation

    def block_hash(self, height: int, generation: int) -> str:
        key = (height, generation)
        found = self._hash_of.get(key)
        if found is not None:
            return found
        body = digest(self.seed, b"hash", height, generation)[8:]
        mask = int.from_bytes(sha256(struct.pack(">q", self.seed) + body)[:6], "big")
        coded = ((height << 16 | generation) ^ mask).to_bytes(6, "big")
        found = (b"\x00\x00" + coded + body).hex()
        if len(self._hashes) >= HASH_MEMORY:
            self._hashes.clear()
            self._hash_of.clear()
        self._hashes[found] = key
        self._hash_of[key] = found
        return found

    def _decode(self, block_hash: str) -> tuple[int, int] | None:
        known = self._hashes.get(block_hash)
        if known is not None:
            height, generation = known
            if generation >= len(self._gens):
                return None
            gen = self._gens[generation]
            return known if gen.fork <= height <= gen.top else None
        try:
            raw = bytes.fromhex(block_hash)
        except ValueError:
            return None
        if len(raw) != 32 or raw[:2] != b"\x00\x00":
            return None
        mask = sha256(struct.pack(">q", self.seed) + raw[8:])[:6]
        height, generation = struct.unpack(">IH", bytes(a ^ b for a, b in
                                                        zip(raw[2:8], mask, strict=True)))
        if generation >= len(self._gens):
            return None
        gen = self._gens[generation]
        if not gen.fork <= height <= gen.top or self.block_hash(height, generation) != \
                block_hash:
            return None
        return height, generation

    def _known(self, block_hash: str) -> tuple[int, int]:
        found = self._decode(block_hash)
        if found is None:
            raise KeyError(f"unknown block {block_hash}")
        return found

    # -- per-block figures -----------------------------------------------------------------

    def tables(self, generation: int) -> GenTables:
        tables = self._tables.get(generation)
        if tables is None:
            tables = GenTables.build(self.seed, generation)
            self._tables[generation] = tables
        return tables

    def _payout_plan(self, height: int, generation: int) -> list[OutPlan]:
        key = (height, generation)
        found = self._payouts.get(key)
        if found is None:
            found = payout_plan(self.shape, height, generation)
            self._payouts.put(key, found)
        return list(found)

    def figures(self, height: int, generation: int) -> Figures:
        """Block (height, generation)'s closed-form figures (O(1))."""
        tables = self._tables.get(generation) or self.tables(generation)
        return block_figures(self.shape, tables, height, generation)

    def plan(self, height: int, generation: int) -> BlockPlan:
        key = (height, generation)
        found: BlockPlan | None = self._plans.get(key)
        if found is None:
            source = height - self.params.maturity
            figures = self.figures(height, generation)
            spent = [] if source < 0 or not figures.funded else self._payout_plan(
                source, self.generation_at(source, generation))
            found = plan_block(self.shape, figures, spent)
            self._plans.put(key, found)
        return found

    def _time(self, height: int, generation: int) -> int:
        jitter = int.from_bytes(digest(self.seed, b"time", height, generation)[:4], "big")
        return (self.params.genesis_time + height * self.params.block_interval
                + jitter % self.params.block_interval)

    def _mediantime(self, height: int, generation: int) -> int:
        """Median time past: block times strictly increase (600 s apart, plus a jitter
        below 600 s), so the median of blocks max(0, h - 10)..h is the middle one's."""
        window = min(height, 10) + 1
        middle = height - window + 1 + window // 2
        return self._time(middle, self.generation_at(middle, generation))

    def _tx_count(self, height: int, generation: int) -> int:
        funded = self.shape.trend(height)
        if not funded:
            return 1
        return 1 + funded + self.tables(generation).spread[height % len(
            self.tables(generation).spread)]

    def _header(self, height: int, generation: int) -> HeaderInfo:
        prev = ZERO_HASH if height == 0 else self.block_hash(
            height - 1, self.generation_at(height - 1, generation))
        material = digest(self.seed, b"header", height, generation)
        header = Header(0x20000000, prev, material.hex(), self._time(height, generation),
                        self.bits, int.from_bytes(material[:4], "little"))
        return HeaderInfo(self.block_hash(height, generation), height, header,
                          self._mediantime(height, generation), (height + 1) * self._work,
                          self._tx_count(height, generation))

    # -- building blocks ---------------------------------------------------------------------

    def _material(self, height: int, generation: int, tx: int, index: int) -> bytes:
        return digest(self.seed, b"key", height, generation, tx, index)

    def _coinbase(self, plan: BlockPlan) -> Tx:
        key = (plan.height, plan.generation)
        found: Tx | None = self._coinbases.get(key)
        if found is not None:
            return found
        tag = digest(self.seed, b"coinbase", plan.height, plan.generation)[:8]
        witness = (b"\x00" * 32,) if plan.txs else ()
        txin = TxIn(ZERO_HASH, 0xFFFF_FFFF, push_int(plan.height) + push_data(tag),
                    0xFFFF_FFFF, witness)
        outputs = [TxOut(out.value, _script(out.kind, self._material(
            plan.height, plan.generation, -1, n))) for n, out in enumerate(plan.coinbase)]
        found = make_tx(2, [txin], outputs)
        self._coinbases.put(key, found)
        return found

    def _build(self, height: int, generation: int) -> FullBlock:
        key = (height, generation)
        found: FullBlock | None = self._blocks.get(key)
        if found is not None:
            return found
        plan = self.plan(height, generation)
        info = self._header(height, generation)
        source = height - self.params.maturity
        funding: Tx | None = None
        funding_height = source
        if plan.txs:
            funding = self._coinbase(self.plan(source, self.generation_at(source, generation)))
        txs: list[Tx] = [self._coinbase(plan)]
        undo: list[tuple[Coin, ...]] = []
        for i, tx_plan in enumerate(plan.txs):
            inputs, coins = [], []
            for n, spent in enumerate(tx_plan.inputs):
                if spent.payout is not None:
                    assert funding is not None
                    prev_txid, prev_index = funding.txid, spent.payout + 1
                    prev_out = funding.outputs[prev_index]
                    coins.append(Coin(prev_out.value, prev_out.script, funding_height, True))
                else:
                    assert spent.chained is not None
                    tx_index, out_index = spent.chained
                    prev_tx = txs[tx_index + 1]
                    prev_txid, prev_index = prev_tx.txid, out_index
                    prev_out = prev_tx.outputs[out_index]
                    coins.append(Coin(prev_out.value, prev_out.script, height, False))
                script_sig, witness = _spend(spent.kind,
                                             self._material(height, generation, i, 1000 + n))
                sequence = 0xFFFF_FFFD if (i + n) % 3 else 0xFFFF_FFFF
                inputs.append(TxIn(prev_txid, prev_index, script_sig, sequence, witness))
            outputs = [TxOut(out.value, _script(out.kind,
                                                self._material(height, generation, i, n),
                                                out.data))
                       for n, out in enumerate(tx_plan.outputs)]
            txs.append(make_tx(2, inputs, outputs, 0))
            undo.append(tuple(coins))
        block = Block(info.header, tuple(txs), info.hash)
        found = FullBlock(info, block, tuple(undo))
        self._blocks.put(key, found)
        return found

    # -- BtcChain ----------------------------------------------------------------------------

    def tip_height(self) -> int:
        return self._gens[self._active].top

    def hash_at(self, height: int) -> str:
        if not 0 <= height <= self.tip_height():
            raise IndexError(height)
        return self.block_hash(height, self.generation_at(height, self._active))

    def locate(self, block_hash: str) -> int | None:
        found = self._decode(block_hash)
        return None if found is None else found[0]

    def header(self, block_hash: str) -> HeaderInfo:
        return self._header(*self._known(block_hash))

    def full_block(self, block_hash: str) -> FullBlock:
        return self._build(*self._known(block_hash))

    def plan_at(self, height: int) -> BlockPlan:
        """The plan of the active chain's block at `height` (every transaction's values;
        O(transactions)). ``ingested_figures`` has the block's totals in O(1)."""
        return self.plan(height, self.generation_at(height, self._active))

    def ingested_figures(self, height: int) -> dict[str, int]:
        """What a client that ingested the active chain's block at ``height`` holds, in
        O(1): transaction, input and output counts, values in satoshis (the coinbase's
        outputs, the OP_RETURN outputs', the non-coinbase outputs', fees, subsidy, and
        what the coinbase leaves unclaimed)."""
        with self.lock:
            if not 0 <= height <= self.tip_height():
                raise IndexError(height)
            f = self.figures(height, self.generation_at(height, self._active))
            return {"tx_count": f.txs, "input_count": f.ins, "output_count": f.outs,
                    "coinbase_out_sat": f.coinbase_value,
                    "unspendable_sat": f.op_value, "total_out_sat": f.total_out,
                    "total_fee_sat": f.fees, "subsidy_sat": f.subsidy,
                    "unclaimed_sat": f.shortfall}

    def block_stats(self, block_hash: str) -> dict[str, Any]:
        height, generation = self._known(block_hash)
        if self.aggregate_only:  # O(1): cheaper than a cache
            return estimated_block_stats(self.figures(height, generation), block_hash,
                                         self._time(height, generation),
                                         self._mediantime(height, generation))
        found: dict[str, Any] | None = self._stats.get((height, generation))
        if found is None:
            identity = BlockIdentity(height, block_hash, self._time(height, generation),
                                     self._mediantime(height, generation),
                                     self.subsidy(height), genesis=height == 0)
            full = self._build(height, generation)
            found = compute_block_stats(identity, stats_view(full.block, full.undo))
            self._stats.put((height, generation), found)
        return dict(found)

    def _segments(self, height: int, generation: int) -> list[tuple[int, int, int]]:
        """(generation, lo, hi) pieces of the ancestry of block (height, generation)."""
        pieces, hi = [], height
        while hi >= 0:
            gen = self._gens[generation]
            if hi >= gen.fork:
                pieces.append((generation, gen.fork, hi))
                hi = gen.fork - 1
            if generation == 0:
                break
            generation = gen.parent
        return pieces

    def index_stats(self, block_hash: str) -> IndexStats:
        height, generation = self._known(block_hash)
        shape, maturity = self.shape, self.params.maturity
        # UTXO count: coinbase reward + payouts per block, and per block with transactions
        # one per transaction + extra outputs (synthetic_plan.py's money flow: every input
        # spends a payout or a reserved output, created on top of those).
        txouts = (max(height, 0) + shape.trend_sum(1 + maturity, height + maturity)
                  + shape.trend_sum(maturity + 1, height))
        scripts = unclaimed = 0
        for gen, lo, hi in self._segments(height, generation):
            tables = self.tables(gen)
            txouts += tables.range_sum("extra_spendable", max(lo, maturity + 1), hi)
            txouts += tables.range_sum("spread", max(lo, maturity + 1), hi)
            scripts += shape.scaled_sum(tables, "op_mult", max(lo, maturity + 1), hi,
                                        maturity, OP_VALUE_SHIFT)
            unclaimed += shape.scaled_sum(tables, "shortfall_mult", max(lo, 1), hi, 0,
                                          SHORTFALL_SHIFT)
        totals = Unspendables(self.subsidy(0), 0, scripts, unclaimed)
        f = self.figures(height, generation)
        if height == 0:
            info = BlockInfo(0, 0, 0, Unspendables(genesis_block=f.subsidy))
        else:
            info = BlockInfo(f.total_in, f.coinbase_value, f.total_out - f.op_value,
                             Unspendables(scripts=f.op_value, unclaimed_rewards=f.shortfall))
        return IndexStats(height, block_hash, txouts, txouts * BOGO_PER_TXOUT,
                          shape.subsidy_sum(0, height) - totals.total, totals, info,
                          digest(self.seed, b"muhash", height, generation).hex())

    def utxo_scan(self) -> UtxoScan:
        tip = self.tip_height()
        index = self.index_stats(self.hash_at(tip))
        # Transactions with unspent outputs: every coinbase and non-coinbase transaction
        # (an estimate: in-block spends can empty a transaction).
        transactions = tip + self.shape.trend_sum(1, tip)
        for gen, lo, hi in self._segments(tip, self._active):
            transactions += self.tables(gen).range_sum(
                "spread", max(lo, self.params.maturity + 1), hi)
        return UtxoScan(tip, index.hash, index.txouts, index.bogosize, index.total_amount,
                        transactions, index.txouts * 60,
                        digest(self.seed, b"hash_serialized", tip, self._active).hex())

    def tips(self) -> list[ChainTip]:
        tip = self.tip_height()
        found = [ChainTip(tip, self.hash_at(tip), 0, "active")]
        breaks = sorted({0, tip + 1, *(gen.fork for gen in self._gens)})
        for number, gen in enumerate(self._gens):
            if number == self._active or gen.top < gen.fork:
                continue
            diverge = next((b for b in breaks if b <= gen.top and (
                b > tip or self.generation_at(b, number) != self.generation_at(
                    b, self._active))), None)
            if diverge is None:
                continue
            found.append(ChainTip(gen.top, self.block_hash(gen.top, number),
                                  gen.top - diverge + 1, "valid-fork"))
        return sorted(found, key=lambda t: (-t.height, t.branchlen, t.hash))

    # -- events ------------------------------------------------------------------------------

    def reorg(self, depth: int, extend: int = 0) -> list[str]:
        with self.lock:
            tip = self.tip_height()
            check_reorg(tip, depth, extend)
            if len(self._gens) >= MAX_GENERATIONS:
                raise ValueError("too many reorgs for one chain")
            fork = tip - depth + 1
            self._gens.append(_Generation(fork, self._active, tip + extend))
            self._active = len(self._gens) - 1
            return [self.hash_at(h) for h in range(fork, tip + extend + 1)]

    def extend(self, blocks: int) -> list[str]:
        if blocks < 0:
            raise ValueError("blocks must not be negative")
        with self.lock:
            start = self.tip_height() + 1
            self._gens[self._active].top += blocks
            return [self.hash_at(h) for h in range(start, start + blocks)]

    def set_tip(self, height: int) -> None:
        with self.lock:
            tip = self.tip_height()
            if not 0 <= height <= tip:
                raise ValueError(f"height must be 0..{tip} (extend the chain to grow it)")
            # Forget everything above ``height`` on the active ancestry.
            while self._gens[self._active].fork > height:
                gen = self._gens[self._active]
                gen.top = gen.fork - 1
                self._active = gen.parent
            self._gens[self._active].top = height

    def describe(self) -> dict[str, Any]:
        described = super().describe()
        described.update(seed=self.seed, aggregate_only=self.aggregate_only,
                         generation=self._active, maturity=self.params.maturity,
                         tx_growth=self.params.tx_growth, max_txs=self.params.max_txs)
        return described
