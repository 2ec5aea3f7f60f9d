"""Bitcoin's byte-level encodings: double SHA-256, CompactSize integers, hash display order
and a bounds-checked reader for the wire format."""

from __future__ import annotations

import hashlib
import struct

ZERO_HASH = "00" * 32


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def display_hex(digest: bytes) -> str:
    """A hash as RPC shows it: the digest's bytes reversed (uint256's GetHex)."""
    return digest[::-1].hex()


def internal_bytes(display: str) -> bytes:
    """The wire bytes of a hash shown as ``display`` hex."""
    return bytes.fromhex(display)[::-1]


def compact_size(n: int) -> bytes:
    if n < 0xFD:
        return bytes((n,))
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    if n <= 0xFFFF_FFFF:
        return b"\xfe" + struct.pack("<I", n)
    return b"\xff" + struct.pack("<Q", n)


def compact_size_len(n: int) -> int:
    if n < 0xFD:
        return 1
    if n <= 0xFFFF:
        return 3
    return 5 if n <= 0xFFFF_FFFF else 9


def push_data(data: bytes) -> bytes:
    """The script bytes that push ``data`` with the smallest opcode (no OP_N for 1 byte)."""
    n = len(data)
    if n < 0x4C:
        return bytes((n,)) + data
    if n <= 0xFF:
        return b"\x4c" + bytes((n,)) + data
    if n <= 0xFFFF:
        return b"\x4d" + struct.pack("<H", n) + data
    return b"\x4e" + struct.pack("<I", n) + data


def push_int(value: int) -> bytes:
    """``CScript() << value``: OP_0, OP_1..OP_16, OP_1NEGATE, else a minimal CScriptNum push
    (how a BIP34 coinbase starts with its height)."""
    if value == 0:
        return b"\x00"
    if value == -1:
        return b"\x4f"
    if 1 <= value <= 16:
        return bytes((0x50 + value,))
    return push_data(script_num(value))


def script_num(value: int) -> bytes:
    """CScriptNum serialization: little-endian magnitude, sign in the top bit."""
    if value == 0:
        return b""
    negative = value < 0
    magnitude = -value if negative else value
    out = bytearray()
    while magnitude:
        out.append(magnitude & 0xFF)
        magnitude >>= 8
    if out[-1] & 0x80:
        out.append(0x80 if negative else 0x00)
    elif negative:
        out[-1] |= 0x80
    return bytes(out)


def decode_script_num(data: bytes) -> int:
    if not data:
        return 0
    value = int.from_bytes(data, "little")
    if data[-1] & 0x80:
        return -(value & ~(0x80 << (8 * (len(data) - 1))))
    return value


class Reader:
    """Reads the wire format front to back; running past the end raises ValueError."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def read(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise ValueError(f"truncated data: need {n} bytes at offset {self.pos}")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def u8(self) -> int:
        return self.read(1)[0]

    def u32(self) -> int:
        value: int = struct.unpack("<I", self.read(4))[0]
        return value

    def i32(self) -> int:
        value: int = struct.unpack("<i", self.read(4))[0]
        return value

    def u64(self) -> int:
        value: int = struct.unpack("<Q", self.read(8))[0]
        return value

    def compact(self) -> int:
        first = self.u8()
        if first < 0xFD:
            return first
        if first == 0xFD:
            value: int = struct.unpack("<H", self.read(2))[0]
        elif first == 0xFE:
            value = struct.unpack("<I", self.read(4))[0]
        else:
            value = struct.unpack("<Q", self.read(8))[0]
        return value

    def var_bytes(self) -> bytes:
        return self.read(self.compact())

    @property
    def at_end(self) -> bool:
        return self.pos >= len(self.data)
