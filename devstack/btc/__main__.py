"""``python -m devstack.btc``: serve the Bitcoin node emulator in the foreground.

Prints one line with the URL on stdout (so a launcher can read the port chosen for
``--port 0``) and exits 0 on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import json
import sys

from devstack.btc.faults import BtcFaultConfig
from devstack.btc.presets import PRESETS, load_chain
from devstack.btc.server import BtcNodeServer
from devstack.http_main import configure_logging, serve_in_foreground


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devstack.btc", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8767, help="0 picks a free port")
    parser.add_argument("--chain", default="synthetic:2000",
                        help=f"one of {', '.join(PRESETS)}")
    parser.add_argument("--seed", type=int, default=7, help="seed of a synthetic chain")
    parser.add_argument("--max-txs", type=int, default=None,
                        help="synthetic chains: payout-funded transactions per block at most "
                             "(default 250; a block has up to 2 more, and its coinbase)")
    parser.add_argument("--tx-growth", type=int, default=None,
                        help="synthetic chains: one more transaction per block every N "
                             "heights, up to --max-txs (default 10)")
    parser.add_argument("--network", default=None,
                        help="network of a synthetic chain, and what getblockchaininfo "
                             "reports (default: the chain's)")
    parser.add_argument("--user", default=None, help="RPC user (with --password)")
    parser.add_argument("--password", default=None)
    parser.add_argument("--cookie-dir", default=None,
                        help="write the .cookie file here (the default without --user)")
    parser.add_argument("--rpcthreads", type=int, default=16)
    parser.add_argument("--rpcworkqueue", type=int, default=64)
    parser.add_argument("--min-latency", type=float, default=0.0,
                        help="seconds every RPC request takes at least")
    parser.add_argument("--latency-us-per-tx", type=float, default=None,
                        help="getblock/getblockstats cost per transaction (default 20)")
    parser.add_argument("--no-coinstatsindex", action="store_true")
    parser.add_argument("--prune", type=int, default=None, metavar="HEIGHT",
                        help="heights below HEIGHT have no block data")
    parser.add_argument("--faults", default=None,
                        help='fault config as JSON, e.g. \'{"work_queue_rate": 0.1}\'')
    parser.add_argument("--log-level", default="WARNING")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.log_level)
    settings = json.loads(args.faults) if args.faults else {}
    if args.latency_us_per_tx is not None:
        settings["latency_us_per_tx"] = args.latency_us_per_tx
    faults = BtcFaultConfig.model_validate(settings)
    try:
        chain = load_chain(args.chain, seed=args.seed, network=args.network,
                           max_txs=args.max_txs, tx_growth=args.tx_growth)
    except ValueError as exc:
        _parser().error(str(exc))
    server = BtcNodeServer(chain, host=args.host, port=args.port, user=args.user,
                           password=args.password, cookie_dir=args.cookie_dir, faults=faults,
                           rpcthreads=args.rpcthreads, rpcworkqueue=args.rpcworkqueue,
                           min_latency=args.min_latency, network=args.network,
                           coinstatsindex=not args.no_coinstatsindex)
    if args.prune is not None:
        server.prune(args.prune)

    def start() -> str:
        server.start()
        auth = f"user={args.user}" if args.user else f"cookie={server.cookie_file}"
        return (f"devstack.btc listening on {server.url} (chain={chain.name} "
                f"network={server.state.network} tip={chain.tip_height()} {auth})")

    return serve_in_foreground(start, server.stop)


if __name__ == "__main__":
    sys.exit(main())
