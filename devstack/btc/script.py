"""Scripts as Core's RPC describes them: the output type (``Solver``), ``IsUnspendable``,
the ``asm`` text (with sighash decoding in scriptSigs), and the ``scriptPubKey`` object
(asm, desc, hex, address, type) of Core >= 23."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from devstack.btc.addresses import PREFIXES, base58check, segwit_address, with_checksum
from devstack.btc.codec import decode_script_num

OP_0 = 0x00
OP_PUSHDATA1, OP_PUSHDATA2, OP_PUSHDATA4 = 0x4C, 0x4D, 0x4E
OP_1NEGATE, OP_1, OP_16 = 0x4F, 0x51, 0x60
OP_RETURN = 0x6A
OP_DUP, OP_EQUAL, OP_EQUALVERIFY = 0x76, 0x87, 0x88
OP_HASH160, OP_CHECKSIG, OP_CHECKMULTISIG = 0xA9, 0xAC, 0xAE
MAX_SCRIPT_SIZE = 10_000

_NAMES = {
    0x4F: "-1", 0x50: "OP_RESERVED", 0x61: "OP_NOP", 0x62: "OP_VER", 0x63: "OP_IF",
    0x64: "OP_NOTIF", 0x65: "OP_VERIF", 0x66: "OP_VERNOTIF", 0x67: "OP_ELSE",
    0x68: "OP_ENDIF", 0x69: "OP_VERIFY", 0x6A: "OP_RETURN", 0x6B: "OP_TOALTSTACK",
    0x6C: "OP_FROMALTSTACK", 0x6D: "OP_2DROP", 0x6E: "OP_2DUP", 0x6F: "OP_3DUP",
    0x70: "OP_2OVER", 0x71: "OP_2ROT", 0x72: "OP_2SWAP", 0x73: "OP_IFDUP", 0x74: "OP_DEPTH",
    0x75: "OP_DROP", 0x76: "OP_DUP", 0x77: "OP_NIP", 0x78: "OP_OVER", 0x79: "OP_PICK",
    0x7A: "OP_ROLL", 0x7B: "OP_ROT", 0x7C: "OP_SWAP", 0x7D: "OP_TUCK", 0x7E: "OP_CAT",
    0x7F: "OP_SUBSTR", 0x80: "OP_LEFT", 0x81: "OP_RIGHT", 0x82: "OP_SIZE",
    0x83: "OP_INVERT", 0x84: "OP_AND", 0x85: "OP_OR", 0x86: "OP_XOR", 0x87: "OP_EQUAL",
    0x88: "OP_EQUALVERIFY", 0x89: "OP_RESERVED1", 0x8A: "OP_RESERVED2", 0x8B: "OP_1ADD",
    0x8C: "OP_1SUB", 0x8D: "OP_2MUL", 0x8E: "OP_2DIV", 0x8F: "OP_NEGATE", 0x90: "OP_ABS",
    0x91: "OP_NOT", 0x92: "OP_0NOTEQUAL", 0x93: "OP_ADD", 0x94: "OP_SUB", 0x95: "OP_MUL",
    0x96: "OP_DIV", 0x97: "OP_MOD", 0x98: "OP_LSHIFT", 0x99: "OP_RSHIFT",
    0x9A: "OP_BOOLAND", 0x9B: "OP_BOOLOR", 0x9C: "OP_NUMEQUAL", 0x9D: "OP_NUMEQUALVERIFY",
    0x9E: "OP_NUMNOTEQUAL", 0x9F: "OP_LESSTHAN", 0xA0: "OP_GREATERTHAN",
    0xA1: "OP_LESSTHANOREQUAL", 0xA2: "OP_GREATERTHANOREQUAL", 0xA3: "OP_MIN",
    0xA4: "OP_MAX", 0xA5: "OP_WITHIN", 0xA6: "OP_RIPEMD160", 0xA7: "OP_SHA1",
    0xA8: "OP_SHA256", 0xA9: "OP_HASH160", 0xAA: "OP_HASH256", 0xAB: "OP_CODESEPARATOR",
    0xAC: "OP_CHECKSIG", 0xAD: "OP_CHECKSIGVERIFY", 0xAE: "OP_CHECKMULTISIG",
    0xAF: "OP_CHECKMULTISIGVERIFY", 0xB0: "OP_NOP1", 0xB1: "OP_CHECKLOCKTIMEVERIFY",
    0xB2: "OP_CHECKSEQUENCEVERIFY", 0xB3: "OP_NOP4", 0xB4: "OP_NOP5", 0xB5: "OP_NOP6",
    0xB6: "OP_NOP7", 0xB7: "OP_NOP8", 0xB8: "OP_NOP9", 0xB9: "OP_NOP10",
    0xBA: "OP_CHECKSIGADD", 0xFF: "OP_INVALIDOPCODE",
}
_NAMES.update({OP_1 + i: str(i + 1) for i in range(16)})

_SIGHASH_NAMES = {0x01: "ALL", 0x02: "NONE", 0x03: "SINGLE", 0x81: "ALL|ANYONECANPAY",
                  0x82: "NONE|ANYONECANPAY", 0x83: "SINGLE|ANYONECANPAY"}

Op = tuple[int, bytes | None]


def ops(script: bytes) -> tuple[list[Op], bool]:
    """The script's (opcode, pushed data) pairs, and whether it parsed to the end."""
    out: list[Op] = []
    i, n = 0, len(script)
    while i < n:
        opcode = script[i]
        i += 1
        if opcode > OP_PUSHDATA4:
            out.append((opcode, None))
            continue
        if opcode < OP_PUSHDATA1:
            size = opcode
        else:
            width = {OP_PUSHDATA1: 1, OP_PUSHDATA2: 2, OP_PUSHDATA4: 4}[opcode]
            if i + width > n:
                return out, False
            size = int.from_bytes(script[i:i + width], "little")
            i += width
        if i + size > n:
            return out, False
        out.append((opcode, script[i:i + size]))
        i += size
    return out, True


def is_unspendable(script: bytes) -> bool:
    """Never enters the UTXO set: starts with OP_RETURN, or is too large to ever run."""
    return (len(script) > 0 and script[0] == OP_RETURN) or len(script) > MAX_SCRIPT_SIZE


def _pubkey_size_ok(key: bytes) -> bool:
    if not key:
        return False
    expected = {2: 33, 3: 33, 4: 65, 6: 65, 7: 65}.get(key[0], 0)
    return expected == len(key)


def witness_program(script: bytes) -> tuple[int, bytes] | None:
    if not 4 <= len(script) <= 42:
        return None
    if script[0] != OP_0 and not OP_1 <= script[0] <= OP_16:
        return None
    if script[1] + 2 != len(script):
        return None
    version = 0 if script[0] == OP_0 else script[0] - OP_1 + 1
    return version, script[2:]


def _multisig(script: bytes) -> tuple[int, list[bytes]] | None:
    if not script or script[-1] != OP_CHECKMULTISIG:
        return None
    parsed, ok = ops(script[:-1])
    if not ok or len(parsed) < 2:
        return None
    first, last = parsed[0][0], parsed[-1][0]
    if not (OP_1 <= first <= OP_16 and OP_1 <= last <= OP_16):
        return None
    keys = [data for _, data in parsed[1:-1]]
    if any(data is None or not _pubkey_size_ok(data) for data in keys):
        return None
    required, count = first - OP_1 + 1, last - OP_1 + 1
    if len(keys) != count or count < required:
        return None
    return required, [k for k in keys if k is not None]


def _push_only(script: bytes) -> bool:
    parsed, ok = ops(script)
    return ok and all(opcode <= OP_16 for opcode, _ in parsed)


def script_type(script: bytes) -> str:
    """Core's ``GetTxnOutputType(Solver(script))``."""
    n = len(script)
    if n == 23 and script[0] == OP_HASH160 and script[1] == 20 and script[22] == OP_EQUAL:
        return "scripthash"
    program = witness_program(script)
    if program is not None:
        version, data = program
        if version == 0 and len(data) == 20:
            return "witness_v0_keyhash"
        if version == 0 and len(data) == 32:
            return "witness_v0_scripthash"
        if version == 1 and len(data) == 32:
            return "witness_v1_taproot"
        if version == 1 and data == b"\x4e\x73":
            return "anchor"
        return "witness_unknown" if version != 0 else "nonstandard"
    if n >= 1 and script[0] == OP_RETURN and _push_only(script[1:]):
        return "nulldata"
    if n in (35, 67) and script[0] == n - 2 and script[-1] == OP_CHECKSIG \
            and _pubkey_size_ok(script[1:-1]):
        return "pubkey"
    if (n == 25 and script[:3] == b"\x76\xa9\x14" and script[23] == OP_EQUALVERIFY
            and script[24] == OP_CHECKSIG):
        return "pubkeyhash"
    if _multisig(script) is not None:
        return "multisig"
    return "nonstandard"


def _valid_der_signature(sig: bytes) -> bool:
    """BIP66 strict DER (with the trailing sighash byte), as IsValidSignatureEncoding."""
    size = len(sig)
    if size < 9 or size > 73 or sig[0] != 0x30 or sig[1] != size - 3:
        return False
    len_r = sig[3]
    if 5 + len_r >= size:
        return False
    len_s = sig[5 + len_r]
    if len_r + len_s + 7 != size or sig[2] != 0x02 or len_r == 0 or sig[4] & 0x80:
        return False
    if len_r > 1 and sig[4] == 0 and not sig[5] & 0x80:
        return False
    if sig[len_r + 4] != 0x02 or len_s == 0 or sig[len_r + 6] & 0x80:
        return False
    return not (len_s > 1 and sig[len_r + 6] == 0 and not sig[len_r + 7] & 0x80)


def asm(script: bytes, sighash_decode: bool = False) -> str:
    """``ScriptToAsmStr``: small pushes as numbers, data as hex, opcodes by name;
    ``sighash_decode`` (scriptSigs) shows a signature's hash type as ``[ALL]``."""
    parsed, ok = ops(script)
    parts: list[str] = []
    decode = sighash_decode and not is_unspendable(script)
    for opcode, data in parsed:
        if data is None:
            parts.append(_NAMES.get(opcode, "OP_UNKNOWN"))
        elif len(data) <= 4:
            parts.append(str(decode_script_num(data)))
        elif decode and _valid_der_signature(data) and data[-1] in _SIGHASH_NAMES:
            parts.append(data[:-1].hex() + f"[{_SIGHASH_NAMES[data[-1]]}]")
        else:
            parts.append(data.hex())
    if not ok:
        parts.append("[error]")
    return " ".join(parts)


_P = 2**256 - 2**32 - 977


def _xonly_valid(key: bytes) -> bool:
    """Is the x-coordinate on secp256k1 (x^3 + 7 a square mod p)?"""
    x = int.from_bytes(key, "big")
    if x >= _P:
        return False
    rhs = (pow(x, 3, _P) + 7) % _P
    return rhs == 0 or pow(rhs, (_P - 1) // 2, _P) == 1


def address(script: bytes, network: str) -> str | None:
    """``EncodeDestination(ExtractDestination(script))``; None for pay-to-pubkey, bare
    multisig, OP_RETURN and nonstandard scripts."""
    prefixes = PREFIXES[network]
    kind = script_type(script)
    if kind == "pubkeyhash":
        return base58check(prefixes.pubkey_hash, script[3:23])
    if kind == "scripthash":
        return base58check(prefixes.script_hash, script[2:22])
    program = witness_program(script)
    if program is not None and kind != "nonstandard":
        return segwit_address(prefixes.hrp, *program)
    return None


def descriptor(script: bytes, network: str) -> str:
    """``InferDescriptor`` without any key or script known to the node."""
    kind = script_type(script)
    if kind == "pubkey":
        inner = f"pk({script[1:-1].hex()})"
    elif kind == "multisig":
        found = _multisig(script)
        assert found is not None
        required, keys = found
        inner = f"multi({required},{','.join(k.hex() for k in keys)})"
    elif kind == "witness_v1_taproot" and _xonly_valid(script[2:]):
        inner = f"rawtr({script[2:].hex()})"
    else:
        found_address = address(script, network)
        inner = f"addr({found_address})" if found_address else f"raw({script.hex()})"
    return with_checksum(inner)


@lru_cache(maxsize=65_536)
def script_pubkey_json(script: bytes, network: str) -> dict[str, Any]:
    """The ``scriptPubKey`` object of getblock / prevout (treat as read-only: cached)."""
    result: dict[str, Any] = {"asm": asm(script), "desc": descriptor(script, network),
                              "hex": script.hex()}
    kind = script_type(script)
    found = address(script, network) if kind != "pubkey" else None
    if found is not None:
        result["address"] = found
    result["type"] = kind
    return result
