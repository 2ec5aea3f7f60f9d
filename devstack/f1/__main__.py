"""``python -m devstack.f1``: serve the F1 demo upstream in the foreground.

Prints one line with the URL on stdout (so a launcher can read the port chosen for
``--port 0``) and exits 0 on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import json
import sys

from devstack.f1.faults import F1FaultConfig
from devstack.f1.presets import PRESETS, load_preset
from devstack.f1.server import F1UpstreamServer
from devstack.http_main import configure_logging, serve_in_foreground


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devstack.f1", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=7, help="dataset seed")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo",
                        help="dataset preset")
    parser.add_argument("--speed", type=float, default=60.0,
                        help="live replay speed (session seconds per real second)")
    parser.add_argument("--replay", type=int, default=None, metavar="SESSION_KEY",
                        help="start replaying this session at start-up")
    parser.add_argument("--token", default=None, help="require this bearer token on /v1")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--fault-seed", type=int, default=0)
    parser.add_argument("--rate-limit", action="store_true",
                        help="answer 429 past 30 requests per 10 s per client")
    parser.add_argument(
        "--faults", default=None,
        help='fault config as JSON, e.g. \'{"html_rate": 0.05, "rate_limit": true}\'')
    parser.add_argument("--log-level", default="WARNING")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.log_level)
    settings = json.loads(args.faults) if args.faults else {}
    settings.setdefault("latency_ms", args.latency_ms)
    settings.setdefault("jitter_ms", args.jitter_ms)
    settings.setdefault("seed", args.fault_seed)
    if args.rate_limit:
        settings["rate_limit"] = True
    faults = F1FaultConfig.model_validate(settings)

    server = F1UpstreamServer(load_preset(args.preset, args.seed), host=args.host,
                              port=args.port, token=args.token, faults=faults, speed=args.speed)

    def start() -> str:
        server.start()
        if args.replay is not None:
            server.replay(args.replay)
        counts = server.dataset.counts()
        summary = " ".join(f"{name}={counts[name]}"
                           for name in ("sessions", "laps", "intervals"))
        return (f"devstack.f1 listening on {server.url} (preset={args.preset} "
                f"seed={args.seed} {summary})")

    return serve_in_foreground(start, server.stop)


if __name__ == "__main__":
    sys.exit(main())
