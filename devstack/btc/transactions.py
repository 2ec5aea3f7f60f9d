"""Bitcoin blocks and transactions: parse raw bytes (segwit included), build new ones, and
the figures RPC reports about them (txid, wtxid, size, weight, merkle root).

Hashes are kept as RPC shows them (display hex, byte-reversed); the wire order is only
used while (de)serializing.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from devstack.btc.codec import (
    ZERO_HASH,
    Reader,
    compact_size,
    display_hex,
    internal_bytes,
    sha256d,
)

WITNESS_SCALE_FACTOR = 4
MAINNET_MAGIC = bytes.fromhex("f9beb4d9")


@dataclass(frozen=True, slots=True)
class TxIn:
    prev_txid: str
    prev_index: int
    script_sig: bytes
    sequence: int = 0xFFFF_FFFF
    witness: tuple[bytes, ...] = ()

    @property
    def is_null(self) -> bool:
        """The prevout of a coinbase input."""
        return self.prev_index == 0xFFFF_FFFF and self.prev_txid == ZERO_HASH


@dataclass(frozen=True, slots=True)
class TxOut:
    value: int
    script: bytes


@dataclass(frozen=True, slots=True)
class Tx:
    version: int
    inputs: tuple[TxIn, ...]
    outputs: tuple[TxOut, ...]
    locktime: int
    # The serialization with witness data when there is any (what "hex" shows).
    raw: bytes
    # Size without witness data (BIP141 "base size").
    base_size: int
    txid: str
    wtxid: str

    @property
    def is_coinbase(self) -> bool:
        return len(self.inputs) == 1 and self.inputs[0].is_null

    @property
    def has_witness(self) -> bool:
        return any(txin.witness for txin in self.inputs)

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def weight(self) -> int:
        return self.base_size * (WITNESS_SCALE_FACTOR - 1) + len(self.raw)

    @property
    def vsize(self) -> int:
        return (self.weight + WITNESS_SCALE_FACTOR - 1) // WITNESS_SCALE_FACTOR


@dataclass(frozen=True, slots=True)
class Header:
    version: int
    prev_hash: str
    merkle_root: str
    time: int
    bits: int
    nonce: int

    def serialize(self) -> bytes:
        return (struct.pack("<I", self.version & 0xFFFF_FFFF) + internal_bytes(self.prev_hash)
                + internal_bytes(self.merkle_root)
                + struct.pack("<III", self.time, self.bits, self.nonce))

    @property
    def hash(self) -> str:
        return display_hex(sha256d(self.serialize()))


@dataclass(frozen=True, slots=True)
class Block:
    header: Header
    txs: tuple[Tx, ...]
    hash: str

    @property
    def size(self) -> int:
        return 80 + len(compact_size(len(self.txs))) + sum(tx.size for tx in self.txs)

    @property
    def stripped_size(self) -> int:
        return 80 + len(compact_size(len(self.txs))) + sum(tx.base_size for tx in self.txs)

    @property
    def weight(self) -> int:
        return self.stripped_size * (WITNESS_SCALE_FACTOR - 1) + self.size

    def serialize(self) -> bytes:
        return (self.header.serialize() + compact_size(len(self.txs))
                + b"".join(tx.raw for tx in self.txs))


# -- building -------------------------------------------------------------------------------


def _serialize_inputs(inputs: Sequence[TxIn]) -> bytes:
    parts = [compact_size(len(inputs))]
    for txin in inputs:
        parts.append(internal_bytes(txin.prev_txid) + struct.pack("<I", txin.prev_index)
                     + compact_size(len(txin.script_sig)) + txin.script_sig
                     + struct.pack("<I", txin.sequence))
    return b"".join(parts)


def _serialize_outputs(outputs: Sequence[TxOut]) -> bytes:
    parts = [compact_size(len(outputs))]
    for txout in outputs:
        parts.append(struct.pack("<q", txout.value) + compact_size(len(txout.script))
                     + txout.script)
    return b"".join(parts)


def _serialize_witness(inputs: Sequence[TxIn]) -> bytes:
    parts = []
    for txin in inputs:
        parts.append(compact_size(len(txin.witness)))
        parts.extend(compact_size(len(item)) + item for item in txin.witness)
    return b"".join(parts)


def make_tx(version: int, inputs: Sequence[TxIn], outputs: Sequence[TxOut],
            locktime: int = 0) -> Tx:
    """A transaction from its parts, serialized and hashed as Core does."""
    head = struct.pack("<I", version & 0xFFFF_FFFF)
    body = _serialize_inputs(inputs) + _serialize_outputs(outputs)
    tail = struct.pack("<I", locktime)
    stripped = head + body + tail
    txid = display_hex(sha256d(stripped))
    if any(txin.witness for txin in inputs):
        raw = head + b"\x00\x01" + body + _serialize_witness(inputs) + tail
        wtxid = display_hex(sha256d(raw))
    else:
        raw, wtxid = stripped, txid
    return Tx(version, tuple(inputs), tuple(outputs), locktime, raw, len(stripped), txid,
              wtxid)


def merkle_root(txids: Sequence[str]) -> str:
    """The merkle root of display-hex ids (the last one paired with itself when odd)."""
    if not txids:
        return ZERO_HASH
    level = [internal_bytes(txid) for txid in txids]
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return display_hex(level[0])


def make_block(header: Header, txs: Sequence[Tx]) -> Block:
    return Block(header, tuple(txs), header.hash)


# -- parsing --------------------------------------------------------------------------------


def parse_tx(reader: Reader) -> Tx:
    start = reader.pos
    version = reader.u32()
    segwit = False
    marker_at = reader.pos
    if reader.data[marker_at:marker_at + 2] == b"\x00\x01":
        segwit = True
        reader.read(2)
    body_start = reader.pos
    inputs: list[TxIn] = []
    for _ in range(reader.compact()):
        prev = display_hex(reader.read(32))
        index = reader.u32()
        script_sig = reader.var_bytes()
        sequence = reader.u32()
        inputs.append(TxIn(prev, index, script_sig, sequence))
    outputs: list[TxOut] = []
    for _ in range(reader.compact()):
        value: int = struct.unpack("<q", reader.read(8))[0]
        outputs.append(TxOut(value, reader.var_bytes()))
    body_end = reader.pos
    if segwit:
        for i, txin in enumerate(inputs):
            items = tuple(reader.var_bytes() for _ in range(reader.compact()))
            inputs[i] = TxIn(txin.prev_txid, txin.prev_index, txin.script_sig, txin.sequence,
                             items)
    locktime = reader.u32()
    raw = reader.data[start:reader.pos]
    data = reader.data
    stripped = data[start:start + 4] + data[body_start:body_end] + raw[-4:]
    txid = display_hex(sha256d(stripped))
    wtxid = display_hex(sha256d(raw)) if segwit else txid
    return Tx(version, tuple(inputs), tuple(outputs), locktime, raw, len(stripped), txid,
              wtxid)


def parse_header(reader: Reader) -> Header:
    version = reader.u32()
    prev_hash = display_hex(reader.read(32))
    merkle = display_hex(reader.read(32))
    time, bits, nonce = reader.u32(), reader.u32(), reader.u32()
    return Header(version, prev_hash, merkle, time, bits, nonce)


def parse_block(data: bytes) -> Block:
    reader = Reader(data)
    header = parse_header(reader)
    txs = tuple(parse_tx(reader) for _ in range(reader.compact()))
    if not reader.at_end:
        raise ValueError(f"{len(data) - reader.pos} trailing bytes after the block")
    block = make_block(header, txs)
    if merkle_root([tx.txid for tx in txs]) != header.merkle_root:
        raise ValueError(f"block {block.hash}: merkle root does not match its transactions")
    return block


def read_blk_file(data: bytes, magic: bytes = MAINNET_MAGIC) -> Iterator[bytes]:
    """The raw blocks of a ``blk*.dat`` file: magic, 4-byte little-endian length, block.
    Zero padding at the end (preallocated files) ends the iteration."""
    reader = Reader(data)
    while not reader.at_end:
        found = reader.read(4)
        if found == b"\x00\x00\x00\x00":
            return
        if found != magic:
            raise ValueError(f"bad magic {found.hex()} at offset {reader.pos - 4}")
        yield reader.read(reader.u32())
