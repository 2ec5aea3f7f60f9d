"""What the Bitcoin node emulator costs per call in aggregate mode (devstack/btc).

    .venv/bin/python -m benchmarks.btc_emulator_cost [--max-txs 2 250] [--calls 20000]
        [--length 1000000] [--start 600000] [--batch 250]

For each ``--max-txs`` value, on a ``synthetic-aggregate`` chain of ``--length`` blocks:

- in process: CPU µs per ``chain.stats(height)`` (what ``getblockstats`` answers) and per
  ``chain.hash_at(height)``, over ``--calls`` consecutive heights from ``--start``;
- over HTTP: the CLI (``python -m devstack.btc``, no per-transaction latency) in a
  process of its own, sent JSON-RPC batches of ``--batch`` ``getblockhash`` calls, then
  of ``getblockstats`` calls (heights as params, as a reconciliation sends them); the
  server process's CPU time (user + system, from psutil) per call, which includes the
  HTTP and JSON handling, and the wall time per call seen by the client.

A reconciliation of 1,000,000 heights costs about ``10**6 x (hash + stats)`` µs of the
emulator's CPU: the targets are <= 15 µs per getblockhash and <= 60 µs per getblockstats.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil

from devstack.btc import SyntheticChain

ROOT = Path(__file__).resolve().parents[1]
USER, PASSWORD = "bench", "bench"


def in_process(length: int, max_txs: int, start: int, calls: int) -> dict[str, float]:
    chain = SyntheticChain(length, aggregate_only=True, max_txs=max_txs)
    heights = range(start, min(start + calls, length))
    began = time.process_time()
    for height in heights:
        chain.hash_at(height)
    hash_us = (time.process_time() - began) / len(heights) * 1e6
    began = time.process_time()
    for height in heights:
        chain.stats(height)
    stats_us = (time.process_time() - began) / len(heights) * 1e6
    return {"getblockhash_us": hash_us, "getblockstats_us": stats_us,
            "txs": chain.stats(start)["txs"]}


class Server:
    """``python -m devstack.btc`` in a process of its own."""

    def __init__(self, length: int, max_txs: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devstack.btc", "--port", "0",
             "--chain", f"synthetic-aggregate:{length}", "--max-txs", str(max_txs),
             "--latency-us-per-tx", "0", "--user", USER, "--password", PASSWORD],
            cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        url = next(word for word in line.split() if word.startswith("http://"))
        parsed = urlparse(url)
        self.connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1",
                                                     parsed.port)
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        self.headers = {"Content-Type": "application/json", "Authorization": f"Basic {token}"}
        self.ps = psutil.Process(self.process.pid)

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def batch(self, method: str, heights: range) -> list[Any]:
        body = json.dumps([{"jsonrpc": "1.0", "id": h, "method": method, "params": [h]}
                           for h in heights])
        self.connection.request("POST", "/", body, self.headers)
        response = self.connection.getresponse()
        replies: list[Any] = json.loads(response.read())
        assert response.status == 200 and len(replies) == len(heights), response.status
        assert all(reply["error"] is None for reply in replies), replies[0]
        return replies

    def measure(self, method: str, start: int, calls: int, size: int) -> dict[str, float]:
        self.batch(method, range(start, start + size))  # warm up
        cpu, wall = self.cpu(), time.perf_counter()
        for lo in range(start, start + calls, size):
            self.batch(method, range(lo, min(lo + size, start + calls)))
        return {"cpu_us": (self.cpu() - cpu) / calls * 1e6,
                "wall_us": (time.perf_counter() - wall) / calls * 1e6}

    def close(self) -> None:
        self.connection.close()
        self.process.terminate()
        self.process.wait(10)


def over_http(length: int, max_txs: int, start: int, calls: int, size: int
              ) -> dict[str, dict[str, float]]:
    server = Server(length, max_txs)
    try:
        calls = min(calls, length - start)
        return {"getblockhash": server.measure("getblockhash", start, calls, size),
                "getblockstats": server.measure("getblockstats", start, calls, size)}
    finally:
        server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-txs", type=int, nargs="+", default=[2, 250])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--length", type=int, default=1_000_000)
    parser.add_argument("--start", type=int, default=600_000)
    parser.add_argument("--batch", type=int, default=250)
    args = parser.parse_args(argv)
    print(f"synthetic-aggregate:{args.length}, {args.calls} consecutive heights from "
          f"{args.start}; HTTP batches of {args.batch}; µs per call")
    print(f"{'max_txs':>7} {'txs':>5} | {'in-process CPU':^19} | {'HTTP server CPU':^19} | "
          f"{'HTTP wall (client)':^19}")
    print(f"{'':>7} {'':>5} | {'hash':>9} {'stats':>9} | {'hash':>9} {'stats':>9} | "
          f"{'hash':>9} {'stats':>9}")
    for max_txs in args.max_txs:
        local = in_process(args.length, max_txs, args.start, args.calls)
        http = over_http(args.length, max_txs, args.start, args.calls, args.batch)
        print(f"{max_txs:>7} {local['txs']:>5} | {local['getblockhash_us']:>9.1f} "
              f"{local['getblockstats_us']:>9.1f} | {http['getblockhash']['cpu_us']:>9.1f} "
              f"{http['getblockstats']['cpu_us']:>9.1f} | "
              f"{http['getblockhash']['wall_us']:>9.1f} "
              f"{http['getblockstats']['wall_us']:>9.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
