"""Address and descriptor encodings RPC shows next to a script: Base58Check (P2PKH,
P2SH), bech32 / bech32m (BIP173, BIP350: segwit v0 and v1+) and the descriptor checksum
(``#xxxxxxxx``, BIP380), per network."""

from __future__ import annotations

from dataclasses import dataclass

from devstack.btc.codec import sha256d

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_CONST = 1
_BECH32M_CONST = 0x2BC830A3


@dataclass(frozen=True, slots=True)
class AddressPrefixes:
    pubkey_hash: int
    script_hash: int
    hrp: str


_MAIN = AddressPrefixes(0x00, 0x05, "bc")
_TEST = AddressPrefixes(0x6F, 0xC4, "tb")
PREFIXES = {"main": _MAIN, "test": _TEST, "testnet4": _TEST, "signet": _TEST,
            "regtest": AddressPrefixes(0x6F, 0xC4, "bcrt")}


def base58check(version: int, payload: bytes) -> str:
    data = bytes((version,)) + payload
    data += sha256d(data)[:4]
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, rem = divmod(number, 58)
        out.append(_B58[rem])
    zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * zeros + "".join(reversed(out))


def _polymod(values: list[int]) -> int:
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            chk ^= generator[i] if (top >> i) & 1 else 0
    return chk


def _convert_bits(data: bytes, from_bits: int, to_bits: int) -> list[int]:
    acc = bits = 0
    out = []
    maxv = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if bits:
        out.append((acc << (to_bits - bits)) & maxv)
    return out


def segwit_address(hrp: str, version: int, program: bytes) -> str:
    """bech32 for witness v0, bech32m for v1 and later."""
    data = [version, *_convert_bits(program, 8, 5)]
    const = _BECH32_CONST if version == 0 else _BECH32M_CONST
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    mod = _polymod(expanded + data + [0] * 6) ^ const
    checksum = [(mod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH32[d] for d in data + checksum)


# The descriptor checksum (BIP380): a BCH code over the descriptor's characters.
_DESC_INPUT = ("0123456789()[],'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~"
               "ijklmnopqrstuvwxyzABCDEFGH`#\"\\ ")
_DESC_GENERATOR = (0xF5DEE51989, 0xA9FDCA3312, 0x1BAB10E32D, 0x3706B1677A, 0x644D626FFD)


def _desc_polymod(symbols: list[int]) -> int:
    chk = 1
    for value in symbols:
        top = chk >> 35
        chk = (chk & 0x7FFFFFFFF) << 5 ^ value
        for i in range(5):
            chk ^= _DESC_GENERATOR[i] if (top >> i) & 1 else 0
    return chk


def with_checksum(descriptor: str) -> str:
    symbols: list[int] = []
    groups: list[int] = []
    for char in descriptor:
        value = _DESC_INPUT.index(char)
        symbols.append(value & 31)
        groups.append(value >> 5)
        if len(groups) == 3:
            symbols.append(groups[0] * 9 + groups[1] * 3 + groups[2])
            groups = []
    if len(groups) == 1:
        symbols.append(groups[0])
    elif len(groups) == 2:
        symbols.append(groups[0] * 3 + groups[1])
    checksum = _desc_polymod(symbols + [0] * 8) ^ 1
    return descriptor + "#" + "".join(_BECH32[(checksum >> (5 * (7 - i))) & 31]
                                      for i in range(8))
