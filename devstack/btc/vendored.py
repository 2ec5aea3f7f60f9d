"""The vendored real chains (devstack/btc/data, see its SOURCE.md), loaded once per
process: the files are small and never change at run time."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from devstack.btc.transactions import read_blk_file

DATA = Path(__file__).resolve().parent / "data"
MAINNET_BLOCKS_FILE = DATA / "first-100k-blocks.dat"
REGTEST_FILE = DATA / "rpc_getblockstats.json"


@dataclass(frozen=True, slots=True)
class RegtestSample:
    blocks: tuple[bytes, ...]
    mocktime: int
    # Bitcoin Core's own getblockstats of heights 101-103 (every field).
    stats: tuple[dict[str, Any], ...]


@cache
def mainnet_blocks() -> tuple[bytes, ...]:
    """Mainnet blocks 0-438, raw (bitcoinj's blk-format test file)."""
    return tuple(read_blk_file(MAINNET_BLOCKS_FILE.read_bytes()))


@cache
def regtest_sample() -> RegtestSample:
    """Bitcoin Core's regtest functional-test chain, blocks 0-103."""
    data = json.loads(REGTEST_FILE.read_text(encoding="utf-8"))
    return RegtestSample(tuple(bytes.fromhex(raw) for raw in data["blocks"]),
                         int(data["mocktime"]), tuple(data["stats"]))
