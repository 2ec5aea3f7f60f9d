"""``RealChain``: a chain of real, parsed blocks (the vendored mainnet and regtest
samples), replayed with a UTXO map so that every spent output is known, as Core's undo
data knows it: getblockstats, verbosity 3 prevouts and coinstatsindex totals all come
from that replay.

Reorgs and new blocks are built as real blocks too (sha256d header hashes, merkle roots,
txids), just without proof of work: a replacement block re-uses its predecessor's
transactions with a marked coinbase (and, where nothing spends it, a coinbase that claims
``1000 * generation`` sat less, so the new branch's figures differ).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
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
from devstack.btc.codec import ZERO_HASH, display_hex, push_data, push_int, sha256, sha256d
from devstack.btc.consensus import (
    BIP30_REPEAT,
    BIP30_UNSPENDABLE,
    HALVING_INTERVAL,
    median_time_past,
    work,
)
from devstack.btc.script import is_unspendable
from devstack.btc.transactions import (
    Block,
    Header,
    Tx,
    TxIn,
    TxOut,
    make_block,
    make_tx,
    merkle_root,
    parse_block,
)

Utxo = dict[tuple[str, int], Coin]


def _bogo(script: bytes) -> int:
    """GetBogoSize: outpoint, height/coinbase, value, script length, script."""
    return 32 + 4 + 4 + 8 + 2 + len(script)


@dataclass(slots=True)
class _Record:
    block: Block
    info: HeaderInfo
    undo: tuple[tuple[Coin, ...], ...]
    index: IndexStats
    stats: dict[str, Any] | None = None


@dataclass(slots=True)
class _IndexTotals:
    """coinstatsindex's running state (src/index/coinstatsindex.cpp, Core 22-29)."""

    txouts: int = 0
    bogosize: int = 0
    total_amount: int = 0
    total_subsidy: int = 0
    prevout_spent: int = 0
    new_outputs: int = 0
    coinbase: int = 0
    unspendables: Unspendables = field(default_factory=Unspendables)
    muhash: bytes = b"\x00" * 32

    def connect(self, block: Block, height: int, undo: Sequence[Sequence[Coin]],
                block_subsidy: int, network: str) -> IndexStats:
        before = (self.prevout_spent, self.coinbase, self.new_outputs, self.unspendables)
        self.total_subsidy += block_subsidy
        genesis = bip30 = scripts = 0
        if height == 0:
            # The genesis coinbase never enters the UTXO set.
            genesis = block_subsidy
        for i, tx in enumerate(block.txs if height > 0 else ()):
            if i == 0 and network == "main" and BIP30_UNSPENDABLE.get(height) == block.hash:
                bip30 += block_subsidy
                continue
            for out in tx.outputs:
                if is_unspendable(out.script):
                    scripts += out.value
                    continue
                if i == 0:
                    self.coinbase += out.value
                else:
                    self.new_outputs += out.value
                self.txouts += 1
                self.total_amount += out.value
                self.bogosize += _bogo(out.script)
            if i > 0:
                for coin in undo[i - 1]:
                    self.prevout_spent += coin.value
                    self.txouts -= 1
                    self.total_amount -= coin.value
                    self.bogosize -= _bogo(coin.script)
        known = self.unspendables + Unspendables(genesis, bip30, scripts, 0)
        unclaimed = (self.prevout_spent + self.total_subsidy) - (
            self.new_outputs + self.coinbase + known.total)
        self.unspendables = known + Unspendables(unclaimed_rewards=unclaimed)
        # Not MuHash3072: a stand-in digest that changes with every connected block.
        self.muhash = sha256(self.muhash + bytes.fromhex(block.hash))
        prevout, coinbase, new_outputs, unspendables = before
        info = BlockInfo(self.prevout_spent - prevout, self.coinbase - coinbase,
                         self.new_outputs - new_outputs, self.unspendables - unspendables)
        return IndexStats(height, block.hash, self.txouts, self.bogosize, self.total_amount,
                          self.unspendables, info, self.muhash.hex())


class RealChain(BtcChain):
    def __init__(self, raw_blocks: Sequence[bytes], *, name: str, network: str,
                 halving_interval: int | None = None) -> None:
        super().__init__(name=name, network=network,
                         halving_interval=halving_interval or HALVING_INTERVAL[network])
        blocks = tuple(parse_block(raw) for raw in raw_blocks)
        if not blocks:
            raise ValueError("a chain needs at least its genesis block")
        for height in range(1, len(blocks)):
            if blocks[height].header.prev_hash != blocks[height - 1].hash:
                raise ValueError(f"block {height} does not link to block {height - 1}")
        self._initial = blocks
        self.reset()

    # -- state -------------------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self._main: list[Block] = list(self._initial)
            self._records: dict[str, _Record] = {}
            self._stale_tips: set[str] = set()
            self._generation = 0
            self._replay()

    def _replay(self) -> None:
        """Connect the main chain from genesis: undo data, index totals, UTXO set."""
        self._utxo: Utxo = {}
        self._totals = _IndexTotals()
        self._times: list[int] = []
        self._chainwork = 0
        blocks, self._main = self._main, []
        for block in blocks:
            self._connect(block)

    def _connect(self, block: Block) -> None:
        height = len(self._main)
        if height and block.header.prev_hash != self._main[-1].hash:
            raise ValueError(f"block {block.hash} does not extend the tip")
        undo: list[tuple[Coin, ...]] = []
        for i, tx in enumerate(block.txs):
            if i > 0:
                try:
                    undo.append(tuple(self._utxo.pop((txin.prev_txid, txin.prev_index))
                                      for txin in tx.inputs))
                except KeyError as exc:
                    raise ValueError(f"block {height} tx {tx.txid} spends an unknown output "
                                     f"{exc.args[0]}") from None
            if height == 0:
                continue
            for n, out in enumerate(tx.outputs):
                if not is_unspendable(out.script):
                    # A BIP30 duplicate overwrites the earlier coin, as in Core.
                    self._utxo[(tx.txid, n)] = Coin(out.value, out.script, height, i == 0)
        self._chainwork += work(block.header.bits)
        self._times.append(block.header.time)
        info = HeaderInfo(block.hash, height, block.header, median_time_past(self._times),
                          self._chainwork, len(block.txs))
        index = self._totals.connect(block, height, undo, self.subsidy(height), self.network)
        self._records[block.hash] = _Record(block, info, tuple(undo), index)
        self._main.append(block)

    # -- reading -----------------------------------------------------------------------------

    def tip_height(self) -> int:
        return len(self._main) - 1

    def hash_at(self, height: int) -> str:
        if not 0 <= height < len(self._main):
            raise IndexError(height)
        return self._main[height].hash

    def locate(self, block_hash: str) -> int | None:
        record = self._records.get(block_hash)
        return None if record is None else record.info.height

    def header(self, block_hash: str) -> HeaderInfo:
        return self._records[block_hash].info

    def full_block(self, block_hash: str) -> FullBlock:
        record = self._records[block_hash]
        return FullBlock(record.info, record.block, record.undo)

    def block_stats(self, block_hash: str) -> dict[str, Any]:
        record = self._records[block_hash]
        if record.stats is None:
            height = record.info.height
            identity = BlockIdentity(
                height, block_hash, record.block.header.time, record.info.mediantime,
                self.subsidy(height), genesis=height == 0,
                bip30_repeat=self.network == "main" and BIP30_REPEAT.get(height) == block_hash)
            record.stats = compute_block_stats(identity, stats_view(record.block, record.undo))
        return dict(record.stats)

    def index_stats(self, block_hash: str) -> IndexStats:
        return self._records[block_hash].index

    def utxo_scan(self) -> UtxoScan:
        coins = sorted(self._utxo.items())
        digest = sha256d(b"".join(bytes.fromhex(txid) + struct.pack("<Iq", n, coin.value)
                                  + coin.script for (txid, n), coin in coins))
        tip = self.tip_height()
        return UtxoScan(
            height=tip, hash=self.hash_at(tip), txouts=len(coins),
            bogosize=sum(_bogo(coin.script) for _, coin in coins),
            total_amount=sum(coin.value for _, coin in coins),
            transactions=len({txid for (txid, _), _ in coins}),
            # An estimate of chainstate's on-disk size (compressed coins plus keys).
            disk_size=sum(len(coin.script) + 44 for _, coin in coins),
            hash_serialized=display_hex(digest))

    def tips(self) -> list[ChainTip]:
        tip = self.tip_height()
        found = [ChainTip(tip, self.hash_at(tip), 0, "active")]
        for stale in self._stale_tips:
            record = self._records.get(stale)
            if record is None:
                continue
            length, cursor = 0, record
            while not self.on_main_chain(cursor.info.hash):
                length += 1
                parent = self._records.get(cursor.block.header.prev_hash)
                if parent is None:
                    break
                cursor = parent
            if length:
                found.append(ChainTip(record.info.height, stale, length, "valid-fork"))
        return sorted(found, key=lambda t: (-t.height, t.branchlen, t.hash))

    # -- events ------------------------------------------------------------------------------

    def reorg(self, depth: int, extend: int = 0) -> list[str]:
        with self.lock:
            tip = self.tip_height()
            check_reorg(tip, depth, extend)
            fork = tip - depth + 1
            self._generation += 1
            self._stale_tips.add(self._main[-1].hash)
            replaced = self._rebuild(self._main[fork:], self._main[fork - 1].hash)
            self._main = self._main[:fork] + replaced
            self._replay()
            return [block.hash for block in replaced] + self.extend(extend)

    def _rebuild(self, old: Sequence[Block], parent: str) -> list[Block]:
        spent = {(txin.prev_txid, txin.prev_index) for block in old
                 for tx in block.txs[1:] for txin in tx.inputs}
        renamed: dict[str, str] = {}
        blocks = []
        for block in old:
            txs = [self._marked_coinbase(block.txs[0], spent)]
            for tx in block.txs[1:]:
                inputs = [TxIn(renamed.get(txin.prev_txid, txin.prev_txid), txin.prev_index,
                               txin.script_sig, txin.sequence, txin.witness)
                          for txin in tx.inputs]
                if any(renamed.get(txin.prev_txid) for txin in tx.inputs):
                    txs.append(make_tx(tx.version, inputs, tx.outputs, tx.locktime))
                else:
                    txs.append(tx)
            for before, after in zip(block.txs, txs, strict=True):
                if before.txid != after.txid:
                    renamed[before.txid] = after.txid
            old_header = block.header
            header = Header(old_header.version, parent, merkle_root([tx.txid for tx in txs]),
                            old_header.time + 1, old_header.bits, old_header.nonce)
            rebuilt = make_block(header, txs)
            blocks.append(rebuilt)
            parent = rebuilt.hash
        return blocks

    def _marked_coinbase(self, coinbase: Tx, spent: set[tuple[str, int]]) -> Tx:
        txin = coinbase.inputs[0]
        tag = push_data(f"pipeworks reorg {self._generation}".encode())
        outputs = list(coinbase.outputs)
        if outputs and (coinbase.txid, 0) not in spent:
            first = outputs[0]
            outputs[0] = TxOut(first.value - min(first.value, 1000 * self._generation),
                               first.script)
        marked = TxIn(txin.prev_txid, txin.prev_index, txin.script_sig + tag, txin.sequence,
                      txin.witness)
        return make_tx(coinbase.version, [marked], outputs, coinbase.locktime)

    def extend(self, blocks: int) -> list[str]:
        if blocks < 0:
            raise ValueError("blocks must not be negative")
        with self.lock:
            hashes = []
            for _ in range(blocks):
                tip = self._main[-1]
                height = len(self._main)
                tag = f"pipeworks/{self._generation}".encode()
                key_hash = sha256(tag + struct.pack("<I", height))[:20]
                coinbase = make_tx(
                    1, [TxIn(ZERO_HASH, 0xFFFF_FFFF, push_int(height) + push_data(tag))],
                    [TxOut(self.subsidy(height), b"\x00\x14" + key_hash)])
                header = Header(0x20000000, tip.hash, coinbase.txid, tip.header.time + 600,
                                tip.header.bits, height)
                block = make_block(header, [coinbase])
                self._connect(block)
                hashes.append(block.hash)
            return hashes

    def set_tip(self, height: int) -> None:
        with self.lock:
            tip = self.tip_height()
            if not 0 <= height <= tip:
                raise ValueError(f"height must be 0..{tip} (extend the chain to grow it)")
            for block in self._main[height + 1:]:
                self._records.pop(block.hash, None)
            self._main = self._main[:height + 1]
            self._replay()
