"""The Bitcoin pipelines' demo upstream: a node emulator serving contracts/btc-rpc.md
(a Bitcoin Core JSON-RPC subset) over real HTTP.

In-process use::

    from devstack.btc import BtcNodeServer, BtcNodeFaults, SyntheticChain, load_chain

    chain = load_chain("mainnet-sample")   # or "regtest-sample", "synthetic:N", ...
    with BtcNodeServer(chain, user="u", password="p",
                       faults=BtcNodeFaults(latency_us_per_tx=0)) as node:
        node.url                           # "http://127.0.0.1:PORT/"
        node.reorg(3); node.prune(100); node.warm_up(seconds=2); node.outage(10)
        node.chain.stats(101)              # what getblockstats answers

Out of process: ``python -m devstack.btc --port 8767 --chain synthetic:2000``; for a long
chain whose getblockstats costs O(1) per height, ``--chain synthetic-aggregate:1000000``
(block sizes: ``--max-txs``, ``--tx-growth``; ``--latency-us-per-tx 0`` drops the
per-transaction sleep, 20 µs by default). ``benchmarks/btc_emulator_cost.py`` measures it.
"""

from devstack.btc.chain import BtcChain, ChainTip, IndexStats
from devstack.btc.faults import BtcFaultConfig, BtcNodeFaults
from devstack.btc.presets import PRESETS, load_chain
from devstack.btc.real import RealChain
from devstack.btc.server import BtcNodeServer
from devstack.btc.synthetic import SyntheticChain

__all__ = [
    "PRESETS",
    "BtcChain",
    "BtcFaultConfig",
    "BtcNodeFaults",
    "BtcNodeServer",
    "ChainTip",
    "IndexStats",
    "RealChain",
    "SyntheticChain",
    "load_chain",
]
