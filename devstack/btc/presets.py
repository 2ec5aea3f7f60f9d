"""Named chains for the CLI, the dev stack and tests.

- ``mainnet-sample``: real mainnet blocks 0-438 (network ``main``);
- ``regtest-sample``: Bitcoin Core's regtest test chain 0-103 (halving every 150);
- ``synthetic:N``: a synthetic chain of N blocks (heights 0..N-1), full blocks;
- ``synthetic-aggregate:N``: the same chain, getblockstats from its plan (any N).

Synthetic chains take ``seed`` (default 7) and ``network`` (default ``main``).
"""

from __future__ import annotations

from devstack.btc.chain import BtcChain
from devstack.btc.real import RealChain
from devstack.btc.synthetic import SyntheticChain
from devstack.btc.vendored import mainnet_blocks, regtest_sample

PRESETS = ("mainnet-sample", "regtest-sample", "synthetic:N", "synthetic-aggregate:N")


def load_chain(name: str, *, seed: int = 7, network: str | None = None) -> BtcChain:
    if name == "mainnet-sample":
        return RealChain(mainnet_blocks(), name=name, network="main")
    if name == "regtest-sample":
        return RealChain(regtest_sample().blocks, name=name, network="regtest")
    kind, _, size = name.partition(":")
    if kind in ("synthetic", "synthetic-aggregate") and size.isdigit() and int(size) > 0:
        return SyntheticChain(int(size), seed=seed, network=network or "main",
                              aggregate_only=kind == "synthetic-aggregate", name=name)
    raise ValueError(f"unknown chain {name!r}; choose from {', '.join(PRESETS)}")
