"""Named chains for the CLI, the dev stack and tests.

- ``mainnet-sample``: real mainnet blocks 0-438 (network ``main``);
- ``regtest-sample``: Bitcoin Core's regtest test chain 0-103 (halving every 150);
- ``synthetic:N``: a synthetic chain of N blocks (heights 0..N-1), full blocks;
- ``synthetic-aggregate:N``: the same chain, getblockstats in O(1) from its closed-form
  figures (any N; sizes and fee statistics estimated, synthetic.py).

Synthetic chains take ``seed`` (default 7), ``network`` (default ``main``), and the block
size: ``max_txs`` (default 250 payout-funded transactions per block, up to 2 more) and
``tx_growth`` (default 10: one more transaction per block every 10 heights until then).
"""

from __future__ import annotations

from devstack.btc.chain import BtcChain
from devstack.btc.real import RealChain
from devstack.btc.synthetic import SyntheticChain
from devstack.btc.vendored import mainnet_blocks, regtest_sample

PRESETS = ("mainnet-sample", "regtest-sample", "synthetic:N", "synthetic-aggregate:N")


def load_chain(name: str, *, seed: int = 7, network: str | None = None,
               max_txs: int | None = None, tx_growth: int | None = None) -> BtcChain:
    kind, _, size = name.partition(":")
    synthetic = kind in ("synthetic", "synthetic-aggregate")
    if not synthetic and (max_txs is not None or tx_growth is not None):
        raise ValueError("max_txs and tx_growth apply to synthetic chains only")
    if name == "mainnet-sample":
        return RealChain(mainnet_blocks(), name=name, network="main")
    if name == "regtest-sample":
        return RealChain(regtest_sample().blocks, name=name, network="regtest")
    if synthetic and size.isdigit() and int(size) > 0:
        shape = {key: value for key, value in (("max_txs", max_txs),
                                               ("tx_growth", tx_growth)) if value is not None}
        return SyntheticChain(int(size), seed=seed, network=network or "main",
                              aggregate_only=kind == "synthetic-aggregate", name=name,
                              **shape)
    raise ValueError(f"unknown chain {name!r}; choose from {', '.join(PRESETS)}")
