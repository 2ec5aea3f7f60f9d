"""Fixtures of the Bitcoin node emulator (devstack/btc): nodes over loopback serving the
vendored real chains (mainnet 0-438, Core's regtest test chain 0-103) and a small
synthetic chain, and a JSON-RPC client that parses numbers as Decimal, as the contract
asks of clients.

Import them where needed (``from tests.btc.conftest_node import ...``); each node starts
once per test session, and every test gets it reset (chain, faults, stats, node state)
with per-transaction latency off.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest

from devstack.btc import BtcNodeFaults, BtcNodeServer, SyntheticChain, load_chain

USER, PASSWORD = "rpc-user", "rpc-password"
# A synthetic chain small enough to replay in a test: transactions from height 21 on,
# one more every 2 blocks up to 60 per block, a halving every 100 blocks.
SYNTHETIC = {"seed": 11, "network": "regtest", "halving_interval": 100, "maturity": 20,
             "tx_growth": 2, "max_txs": 60}
SYNTHETIC_LENGTH = 260


def synthetic_chain(**overrides: Any) -> SyntheticChain:
    options: dict[str, Any] = {**SYNTHETIC, **overrides}
    return SyntheticChain(options.pop("length", SYNTHETIC_LENGTH), **options)


class RpcFailure(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {code} {message}")
        self.status, self.code, self.message = status, code, message


@dataclass
class Answer:
    status: int
    text: str
    headers: httpx.Headers
    elapsed_s: float

    def json(self) -> Any:
        return json.loads(self.text, parse_float=Decimal)


class NodeClient:
    """JSON-RPC over real HTTP; amounts stay Decimal."""

    def __init__(self, url: str, auth: tuple[str, str] | None = (USER, PASSWORD),
                 timeout: float = 10.0) -> None:
        self.url = url
        self.http = httpx.Client(auth=auth, timeout=timeout)

    def post(self, body: Any = None, *, content: bytes | None = None, path: str = "",
             method: str = "POST", **kwargs: Any) -> Answer:
        data = content if content is not None else json.dumps(body).encode()
        response = self.http.request(method, self.url + path, content=data,
                                     headers={"Content-Type": "application/json"}, **kwargs)
        return Answer(response.status_code, response.text, response.headers,
                      response.elapsed.total_seconds())

    def request(self, method: str, *params: Any, version: str | None = None,
                request_id: Any = 1) -> Answer:
        body: dict[str, Any] = {"id": request_id, "method": method, "params": list(params)}
        if version is not None:
            body["jsonrpc"] = version
        return self.post(body)

    def call(self, method: str, *params: Any) -> Any:
        answer = self.request(method, *params)
        reply = answer.json()
        if reply.get("error") is not None:
            raise RpcFailure(answer.status, reply["error"]["code"], reply["error"]["message"])
        assert answer.status == 200
        return reply["result"]

    def error(self, method: str, *params: Any) -> RpcFailure:
        try:
            self.call(method, *params)
        except RpcFailure as failure:
            return failure
        raise AssertionError(f"{method}{params} succeeded")

    def close(self) -> None:
        self.http.close()


def _node(chain: Any) -> Iterator[BtcNodeServer]:
    server = BtcNodeServer(chain, user=USER, password=PASSWORD,
                           faults=BtcNodeFaults(latency_us_per_tx=0)).start()
    yield server
    server.stop()


def _fresh(server: BtcNodeServer) -> Iterator[tuple[BtcNodeServer, NodeClient]]:
    server.reset()
    client = NodeClient(server.url)
    yield server, client
    client.close()
    server.reset()


@pytest.fixture(scope="session")
def mainnet_server() -> Iterator[BtcNodeServer]:
    yield from _node(load_chain("mainnet-sample"))


@pytest.fixture(scope="session")
def regtest_server() -> Iterator[BtcNodeServer]:
    yield from _node(load_chain("regtest-sample"))


@pytest.fixture(scope="session")
def synthetic_server() -> Iterator[BtcNodeServer]:
    yield from _node(synthetic_chain())


@pytest.fixture
def mainnet(mainnet_server: BtcNodeServer) -> Iterator[tuple[BtcNodeServer, NodeClient]]:
    yield from _fresh(mainnet_server)


@pytest.fixture
def regtest(regtest_server: BtcNodeServer) -> Iterator[tuple[BtcNodeServer, NodeClient]]:
    yield from _fresh(regtest_server)


@pytest.fixture
def synthetic(synthetic_server: BtcNodeServer
              ) -> Iterator[tuple[BtcNodeServer, NodeClient]]:
    yield from _fresh(synthetic_server)
