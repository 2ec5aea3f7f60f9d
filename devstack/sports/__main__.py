"""``python -m devstack.sports``: serve the demo upstream in the foreground.

Prints one line with the URL on stdout (so a launcher can read the port chosen for
``--port 0``) and exits 0 on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import json
import sys

from devstack.http_main import configure_logging, serve_in_foreground
from devstack.sports.faults import FaultConfig
from devstack.sports.presets import PRESETS, load_preset
from devstack.sports.server import UpstreamServer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devstack.sports", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=7, help="dataset seed")
    parser.add_argument("--size", choices=sorted(PRESETS), default="demo", help="dataset preset")
    parser.add_argument("--token", default=None, help="require this bearer token on /v1")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--fault-seed", type=int, default=0)
    parser.add_argument(
        "--faults",
        default=None,
        help='full fault config as JSON, e.g. \'{"error_rate": 0.1, "rate_limit_rate": 0.05}\'',
    )
    parser.add_argument("--log-level", default="WARNING")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.log_level)
    settings = json.loads(args.faults) if args.faults else {}
    settings.setdefault("latency_ms", args.latency_ms)
    settings.setdefault("jitter_ms", args.jitter_ms)
    settings.setdefault("seed", args.fault_seed)
    faults = FaultConfig.model_validate(settings)

    server = UpstreamServer(
        load_preset(args.size, args.seed),
        host=args.host,
        port=args.port,
        token=args.token,
        faults=faults,
    )

    def start() -> str:
        server.start()
        counts = server.dataset.counts()
        summary = " ".join(f"{name}={count}" for name, count in counts.items())
        details = f"size={args.size} seed={args.seed} {summary}"
        return f"devstack.sports listening on {server.url} ({details})"

    return serve_in_foreground(start, server.stop)


if __name__ == "__main__":
    sys.exit(main())
