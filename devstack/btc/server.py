"""The Bitcoin node emulator's HTTP server (the dev stack's shared server,
devstack/http_server.py), answering as Core's HTTP RPC server does.

Order of processing for a request, as in Core: an outage (dropped connection), the
client address (-rpcallowip, 403), the path (only ``/``, else 404), the transport faults
(503 storms, injected errors), the work queue (-rpcthreads running, -rpcworkqueue
waiting, else 503), then in a worker thread: latency, POST only (405), credentials (401,
after 250 ms when wrong), and the JSON-RPC body. ``/_admin/`` requests skip all of that
and are not counted in the stats.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Self

from devstack.btc import admin, jsonrpc
from devstack.btc.auth import COOKIE_NAME, RpcAuth
from devstack.btc.chain import BtcChain
from devstack.btc.faults import BtcFaultConfig, BtcNodeFaults
from devstack.btc.node_state import WARMUP_MESSAGE, NodeState, OutageMode
from devstack.btc.presets import load_chain
from devstack.btc.rpc_methods import RpcContext, RpcError, call
from devstack.btc.rpclog import RpcLog
from devstack.btc.workqueue import WorkQueue
from devstack.http_faults import FaultDecision, fault_name, malformed_response
from devstack.http_server import Drop, HTTPService, Request, Response, nginx_error_page
from devstack.http_stats import Stats

log = logging.getLogger(__name__)

TEXT = "text/plain; charset=utf-8"
WORK_QUEUE_EXCEEDED = Response(503, b"Work queue depth exceeded", TEXT)
UNAUTHORIZED = Response(401, b"", TEXT, (("WWW-Authenticate", 'Basic realm="jsonrpc"'),))
WRONG_PASSWORD_DELAY_S = 0.25


class BtcNodeServer(HTTPService):
    """A Bitcoin Core-like JSON-RPC node on a background thread; also a context manager.

    ``chain``, ``faults`` and ``state`` are live: change them (or call the methods below)
    at any time and the next request sees the change (a batch's calls share one fault
    config, read when the request starts). Without ``user``/``password`` and
    ``cookie_dir``, cookie auth is used in a temporary directory (``cookie_file``).
    """

    thread_name = "btc-node"

    def __init__(
        self,
        chain: BtcChain | str = "synthetic:2000",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        user: str | None = None,
        password: str | None = None,
        cookie_dir: str | os.PathLike[str] | None = None,
        faults: BtcNodeFaults | BtcFaultConfig | None = None,
        rpcthreads: int = 16,
        rpcworkqueue: int = 64,
        min_latency: float = 0.0,
        network: str | None = None,
        coinstatsindex: bool = True,
        rpcwhitelist: Iterable[str] | None = None,
        rpcallowip: Iterable[str] | None = None,
        log_size: int = 10_000,
    ) -> None:
        super().__init__(host=host, port=port)
        self.chain = load_chain(chain) if isinstance(chain, str) else chain
        self.faults = faults if isinstance(faults, BtcNodeFaults) else BtcNodeFaults(faults)
        self.state = NodeState(network or self.chain.network, coinstatsindex=coinstatsindex)
        self.stats = Stats(log_size)
        self.rpc_log = RpcLog(self.stats.now, log_size)
        self.queue = WorkQueue(rpcthreads, rpcworkqueue)
        self.min_latency = min_latency
        self.whitelist = None if rpcwhitelist is None else frozenset(rpcwhitelist)
        self.allowed_networks = None if rpcallowip is None else tuple(
            ipaddress.ip_network(entry, strict=False) for entry in rpcallowip)
        # Without credentials the node uses a cookie, in a directory of its own.
        self._cookie_in_temp = user is None and password is None and cookie_dir is None
        self._own_cookie_dir: str | None = None
        self.auth = RpcAuth(user, password, cookie_dir)
        self._lifecycle = threading.Lock()
        self._closed = True
        self._closer: threading.Timer | None = None
        self._restart: threading.Timer | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://host:port/``; stays valid through a refused-connections outage."""
        if self._closed:
            raise RuntimeError("server is not running")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def cookie_file(self) -> str | None:
        return None if self.auth.cookie_file is None else str(self.auth.cookie_file)

    def start(self) -> Self:
        with self._lifecycle:
            if self._cookie_in_temp and self._own_cookie_dir is None:
                self._own_cookie_dir = tempfile.mkdtemp(prefix="btc-node-")
                self.auth.cookie_file = Path(self._own_cookie_dir) / COOKIE_NAME
            self.auth.write_cookie()
            super().start()
            self._closed = False
        return self

    def stop(self) -> None:
        with self._lifecycle:
            self._closed = True
            for timer in (self._closer, self._restart):
                if timer is not None:
                    timer.cancel()
            self._closer = self._restart = None
            super().stop()
            self.auth.remove_cookie()
            if self._own_cookie_dir is not None:
                shutil.rmtree(self._own_cookie_dir, ignore_errors=True)
                self._own_cookie_dir = None
                self.auth.cookie_file = None

    # -- events, for in-process tests --------------------------------------------------------

    def reorg(self, depth: int, extend: int = 0) -> list[str]:
        """Replace the last ``depth`` blocks (and add ``extend`` more); new hashes."""
        return self.chain.reorg(depth, extend)

    def extend(self, blocks: int) -> list[str]:
        return self.chain.extend(blocks)

    def set_tip(self, height: int) -> None:
        self.chain.set_tip(height)

    def prune(self, below: int | None) -> None:
        """Heights below ``below`` answer -1 ``Block not available (pruned data)``."""
        self.state.prune(below)

    def warm_up(self, seconds: float | None = None, requests: int | None = None,
                message: str = WARMUP_MESSAGE) -> None:
        self.state.warm_up(seconds, requests, message)

    def end_warm_up(self) -> None:
        self.state.end_warm_up()

    def set_network(self, network: str) -> None:
        """What getblockchaininfo reports as ``chain`` (the chain itself is unchanged)."""
        self.state.set_network(network)

    def set_ibd(self, active: bool) -> None:
        self.state.ibd = active

    def outage(self, seconds: float, mode: OutageMode = "refuse", *,
               defer_s: float = 0.0) -> None:
        """The node is down for ``seconds``: ``refuse`` closes the port (connections
        refused; the node restarts afterwards and writes a new cookie), ``reset`` /
        ``close`` accept connections and cut them without an answer (logged).

        ``defer_s`` closes the port that much later (the admin route's own answer must
        get out first); requests in between are reset."""
        if seconds <= 0:
            raise ValueError("seconds must be positive")
        if mode not in ("refuse", "reset", "close"):
            raise ValueError("mode must be refuse, reset or close")
        self.state.start_outage(seconds, mode)
        if mode != "refuse":
            return
        if defer_s > 0:
            with self._lifecycle:
                self._closer = threading.Timer(defer_s, self._go_down, (seconds - defer_s,))
                self._closer.daemon = True
                self._closer.start()
        else:
            self._go_down(seconds)

    def _go_down(self, seconds: float) -> None:
        with self._lifecycle:
            self._closer = None
            if self._closed or not self.running or self.state.outage() is None:
                return
            HTTPService.stop(self)
            self._restart = threading.Timer(max(seconds, 0.0), self._come_back)
            self._restart.daemon = True
            self._restart.start()

    def end_outage(self) -> None:
        """End an outage now (a refused port opens again at once)."""
        self.state.end_outage()
        with self._lifecycle:
            for timer in (self._closer, self._restart):
                if timer is not None:
                    timer.cancel()
            self._closer = None
        self._come_back()

    def _come_back(self) -> None:
        for _ in range(25):
            with self._lifecycle:
                self._restart = None
                self.state.end_outage()
                if self._closed or self.running:
                    return
                try:
                    # A restarted node writes a new cookie.
                    self.auth.write_cookie()
                    HTTPService.start(self)
                    return
                except OSError:
                    log.warning("btc node: port %s not free yet after an outage", self.port)
            time.sleep(0.2)

    def rotate_cookie(self) -> None:
        self.auth.write_cookie()

    def clear_stats(self) -> None:
        self.stats.clear()
        self.rpc_log.clear()

    def now(self) -> float:
        """The stats clock (seconds), comparable with the logs' ``t``."""
        return self.stats.now()

    def requests_between(self, start: float, end: float) -> list[dict[str, Any]]:
        """HTTP requests (admin excluded) that arrived within [start, end]."""
        return [entry for entry in self.stats.log() if start <= entry["t"] <= end]

    def reset(self, chain: bool = True, faults: bool = True, stats: bool = True,
              node: bool = True) -> None:
        if chain:
            self.chain.reset()
        if faults:
            self.faults.reset()
        if stats:
            self.clear_stats()
        if node:
            if self.state.outage() is not None or self._restart is not None:
                self.end_outage()
            self.state.reset()

    def info(self) -> dict[str, Any]:
        return {
            "url": None if self._closed else self.url,
            "chain": self.chain.describe(),
            "node": self.state.describe(),
            "auth": {"user": self.auth.user is not None, "cookie_file": self.cookie_file},
            "work_queue": self.queue.snapshot(),
            "min_latency": self.min_latency,
            "rpcwhitelist": None if self.whitelist is None else sorted(self.whitelist),
        }

    # -- requests ----------------------------------------------------------------------------

    def handle(self, request: Request) -> Response | Drop:
        arrived = time.monotonic()
        if request.path.startswith("/_admin/"):
            return admin.handle(self, request.method, request.path, request.query,
                                request.body)
        answer, route, fault = self._answer(request, arrived)
        self.stats.record(
            arrived=arrived, method=request.method, path=request.path, query=request.query,
            route=route, status=None if isinstance(answer, Drop) else answer.status,
            fault=fault, duration_s=time.monotonic() - arrived)
        return answer

    def _answer(self, request: Request, arrived: float
                ) -> tuple[Response | Drop, str, str | None]:
        outage = self.state.outage()
        if outage is not None:
            return Drop("close" if outage == "close" else "reset"), "outage", "outage"
        if not self._client_allowed(request.client):
            return Response(403, b"", TEXT), "forbidden", None
        if request.path != "/" or request.query:
            return Response(404, b"", TEXT), "not_found", None
        decision = self.faults.decide(request.path)
        fault = fault_name(decision)
        if decision.action == "error" and decision.status == 503:
            return WORK_QUEUE_EXCEEDED, "work_queue", fault
        if not self.queue.admit():
            return WORK_QUEUE_EXCEEDED, "work_queue", "capacity"
        if not self.queue.start(self.stopping):
            return Drop("close"), "stopping", fault
        try:
            answer, route = self._in_worker(request, decision)
        finally:
            self.queue.finish()
        if isinstance(answer, Response):
            remaining = self.min_latency - (time.monotonic() - arrived)
            if remaining > 0 and self.stopping.wait(remaining):
                return Drop("close"), route, fault
        return answer, route, fault

    def _client_allowed(self, client: str) -> bool:
        if self.allowed_networks is None:
            return True
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return False
        return any(address in network for network in self.allowed_networks)

    def _in_worker(self, request: Request, decision: FaultDecision
                   ) -> tuple[Response | Drop, str]:
        released = decision.hold is None or self.faults.wait_at_gate(decision.hold,
                                                                     self.stopping)
        if not released or (decision.delay_s > 0 and self.stopping.wait(decision.delay_s)):
            return Drop("close"), "stopping"
        if decision.action == "drop":
            return Drop(decision.drop_mode), "dropped"
        injected = self._fault_response(decision)
        if injected is not None:
            return injected, "fault"
        if request.method != "POST":
            return Response(405, b"JSONRPC server handles only POST requests", TEXT), \
                "method_not_allowed"
        verdict = self.auth.check(request.headers.get("Authorization"))
        if verdict != "ok":
            if verdict == "wrong" and self.stopping.wait(WRONG_PASSWORD_DELAY_S):
                return Drop("close"), "stopping"
            return UNAUTHORIZED, "unauthorized"
        # One snapshot of the fault config per HTTP request: a batch's calls share it.
        config = self.faults.config

        def execute(method: str, params: Any, request_id: Any, version: str) -> Any:
            return self._execute(method, params, request_id, version, config)

        reply = jsonrpc.process(request.body, execute, self.whitelist)
        response = Response(reply.status, reply.body, reply.content_type)
        if decision.action == "malformed" and response.status == 200:
            return malformed_response(response, decision), reply.route
        return response, reply.route

    def _fault_response(self, decision: FaultDecision) -> Response | None:
        status = decision.status
        if decision.action in ("none", "malformed", "drop") or status is None:
            return None
        if status == 429:
            return Response(429, b"Too Many Requests", TEXT,
                            (("Retry-After", str(decision.retry_after_s or 0)),))
        # Not the node's own answer: a proxy's (or a crashing node's) HTML page.
        return Response(status, nginx_error_page(status), "text/html")

    def _execute(self, method: str, params: Any, request_id: Any, version: str,
                 config: BtcFaultConfig | None = None) -> Any:
        """One RPC call (a batch element too): run, log, then take its latency."""
        started = self.stats.now()
        begun = time.monotonic()
        context = RpcContext(self.chain, self.state,
                             self.faults.config if config is None else config, self._sleep)
        error: int | None = None
        try:
            return call(context, method, params)
        except RpcError as exc:
            error = exc.code
            raise
        except Exception as exc:
            log.exception("btc node: %s failed", method)
            error = -1
            raise RpcError(-1, f"Internal error: {exc}") from exc
        finally:
            if context.pending_s > 0:
                self._sleep(context.pending_s)
            self.rpc_log.record(started=started, method=method, params=params,
                                request_id=request_id, version=version, error=error,
                                duration_s=time.monotonic() - begun)

    def _sleep(self, seconds: float) -> None:
        self.stopping.wait(seconds)
