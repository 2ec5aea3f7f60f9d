"""What the node serves, whatever the chain's origin: ``BtcChain`` and the values it hands
to the RPC layer.

A chain knows its main chain (heights 0..tip), blocks that were reorged out (kept, with
their data, like Core keeps them in its block index), per-block statistics and the
coinstatsindex's running totals. Mutations (reorg, extend, set_tip) and reads happen
under ``lock``, so each RPC call sees one state of the chain.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from devstack.btc.blockstats import StatsOutput, StatsTx
from devstack.btc.consensus import check_network, subsidy
from devstack.btc.script import is_unspendable
from devstack.btc.transactions import Block, Header


@dataclass(frozen=True, slots=True)
class Coin:
    """A spent output as the undo data keeps it (what verbosity 3 shows as ``prevout``)."""

    value: int
    script: bytes
    height: int
    coinbase: bool


@dataclass(frozen=True, slots=True)
class HeaderInfo:
    """A block index entry: the header plus what the node derives from its ancestry."""

    hash: str
    height: int
    header: Header
    mediantime: int
    chainwork: int
    n_tx: int


@dataclass(frozen=True, slots=True)
class FullBlock:
    info: HeaderInfo
    block: Block
    # One tuple of spent coins per non-coinbase transaction, in block order.
    undo: tuple[tuple[Coin, ...], ...]


@dataclass(frozen=True, slots=True)
class Unspendables:
    genesis_block: int = 0
    bip30: int = 0
    scripts: int = 0
    unclaimed_rewards: int = 0

    @property
    def total(self) -> int:
        return self.genesis_block + self.bip30 + self.scripts + self.unclaimed_rewards

    def __add__(self, other: Unspendables) -> Unspendables:
        return Unspendables(self.genesis_block + other.genesis_block, self.bip30 + other.bip30,
                            self.scripts + other.scripts,
                            self.unclaimed_rewards + other.unclaimed_rewards)

    def __sub__(self, other: Unspendables) -> Unspendables:
        return Unspendables(self.genesis_block - other.genesis_block, self.bip30 - other.bip30,
                            self.scripts - other.scripts,
                            self.unclaimed_rewards - other.unclaimed_rewards)


@dataclass(frozen=True, slots=True)
class BlockInfo:
    """coinstatsindex's per-block figures (``gettxoutsetinfo`` ``block_info``), satoshis.
    ``prevout_spent + subsidy = new_outputs_ex_coinbase + coinbase + unspendable``."""

    prevout_spent: int
    coinbase: int
    new_outputs_ex_coinbase: int
    unspendables: Unspendables

    @property
    def unspendable(self) -> int:
        return self.unspendables.total


@dataclass(frozen=True, slots=True)
class IndexStats:
    """coinstatsindex at one block: running totals up to it, and its own block_info.
    ``Σ subsidy(0..height) = total_amount + total_unspendable_amount``."""

    height: int
    hash: str
    txouts: int
    bogosize: int
    total_amount: int
    total_unspendables: Unspendables
    block_info: BlockInfo
    muhash: str

    @property
    def total_unspendable_amount(self) -> int:
        return self.total_unspendables.total


@dataclass(frozen=True, slots=True)
class UtxoScan:
    """A full scan of the UTXO set at the tip (``gettxoutsetinfo`` without the index)."""

    height: int
    hash: str
    txouts: int
    bogosize: int
    total_amount: int
    transactions: int
    disk_size: int
    hash_serialized: str


@dataclass(frozen=True, slots=True)
class ChainTip:
    height: int
    hash: str
    branchlen: int
    status: str


def stats_view(block: Block, undo: tuple[tuple[Coin, ...], ...]) -> list[StatsTx]:
    """A parsed block and its undo data, as compute_block_stats reads them."""
    view = []
    for index, tx in enumerate(block.txs):
        outputs = tuple(StatsOutput(out.value, len(out.script), is_unspendable(out.script))
                        for out in tx.outputs)
        prevouts = () if index == 0 else tuple(
            (coin.value, len(coin.script)) for coin in undo[index - 1])
        view.append(StatsTx(tx.is_coinbase, outputs, prevouts, tx.size, tx.weight,
                            tx.has_witness))
    return view


class BtcChain(ABC):
    """A chain the node emulator serves. Blocks are named by their hash everywhere."""

    def __init__(self, *, name: str, network: str, halving_interval: int) -> None:
        self.name = name
        self.network = check_network(network)
        if halving_interval < 1:
            raise ValueError("halving_interval must be at least 1")
        self.halving_interval = halving_interval
        self.lock = threading.RLock()

    def subsidy(self, height: int) -> int:
        return subsidy(height, self.halving_interval)

    # -- reading ---------------------------------------------------------------------------

    @abstractmethod
    def tip_height(self) -> int: ...

    @abstractmethod
    def hash_at(self, height: int) -> str:
        """The main chain's block at ``height``; IndexError outside 0..tip."""

    @abstractmethod
    def locate(self, block_hash: str) -> int | None:
        """The height of a block the node knows (main chain or not), else None."""

    def on_main_chain(self, block_hash: str) -> bool:
        height = self.locate(block_hash)
        return height is not None and height <= self.tip_height() and \
            self.hash_at(height) == block_hash

    @abstractmethod
    def header(self, block_hash: str) -> HeaderInfo: ...

    @abstractmethod
    def full_block(self, block_hash: str) -> FullBlock: ...

    @abstractmethod
    def block_stats(self, block_hash: str) -> dict[str, Any]:
        """Every getblockstats field of a known block."""

    @abstractmethod
    def index_stats(self, block_hash: str) -> IndexStats: ...

    @abstractmethod
    def utxo_scan(self) -> UtxoScan: ...

    @abstractmethod
    def tips(self) -> list[ChainTip]:
        """getchaintips: the active tip and every stale branch's tip, highest first."""

    # -- events ----------------------------------------------------------------------------

    @abstractmethod
    def reorg(self, depth: int, extend: int = 0) -> list[str]:
        """Replace the last ``depth`` blocks with different ones (then add ``extend``
        more); returns the new blocks' hashes, lowest first."""

    @abstractmethod
    def extend(self, blocks: int) -> list[str]:
        """Mine ``blocks`` new blocks on the tip; returns their hashes."""

    @abstractmethod
    def set_tip(self, height: int) -> None:
        """Forget the main chain's blocks above ``height`` (a node that is behind)."""

    @abstractmethod
    def reset(self) -> None:
        """Back to the chain as it was built."""

    # -- conveniences for tests --------------------------------------------------------------

    def resolve(self, block: int | str) -> str:
        """A height (main chain) or a hash, as a known block's hash."""
        with self.lock:
            if isinstance(block, int):
                return self.hash_at(block)
            if self.locate(block) is None:
                raise KeyError(f"unknown block {block}")
            return block

    def stats(self, block: int | str) -> dict[str, Any]:
        """What getblockstats answers for this height or hash."""
        with self.lock:
            return self.block_stats(self.resolve(block))

    def describe(self) -> dict[str, Any]:
        with self.lock:
            tip = self.tip_height()
            return {"name": self.name, "network": self.network,
                    "halving_interval": self.halving_interval, "tip": tip,
                    "bestblockhash": self.hash_at(tip),
                    "tips": [{"height": t.height, "hash": t.hash, "branchlen": t.branchlen,
                              "status": t.status} for t in self.tips()]}


def check_reorg(tip: int, depth: int, extend: int) -> None:
    """A reorganisation replaces 1..tip blocks (the genesis block stays) and may add
    more on the new branch."""
    if not 1 <= depth <= tip:
        raise ValueError(f"depth must be 1..{tip} (the genesis block stays)")
    if extend < 0:
        raise ValueError("extend must not be negative")
