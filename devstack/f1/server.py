"""The F1 demo upstream's HTTP server (the dev stack's shared server, devstack/http_server.py).

Order of processing for a ``/v1`` request, as behind a real proxy: the per-client rate
limit (if on), then transport faults (latency, drops, HTML 5xx, 429), then bearer auth,
then the answer cache, then the endpoint (clock, data faults). ``/_admin/`` requests skip
all of that and are not counted in the stats.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from devstack.f1 import admin, api
from devstack.f1.api import ApiContext, Randomness, detail
from devstack.f1.clock import LiveClock
from devstack.f1.dataset import F1Dataset
from devstack.f1.faults import DataFaults, F1FaultConfig, F1Faults
from devstack.f1.ratelimit import RateLimiter, retry_after_header
from devstack.http_faults import FaultDecision, fault_name, malformed_response
from devstack.http_server import (
    JSON_TYPE,
    Drop,
    HTTPService,
    Request,
    Response,
    bearer_authorized,
    nginx_error_page,
)
from devstack.http_stats import Stats

log = logging.getLogger(__name__)

# What an application server's crash page looks like (the contract: "HTML (a stack trace)").
_TRACEBACK_PAGE = (
    b"<!DOCTYPE html><html><head><title>500 Internal Server Error</title></head><body>"
    b"<h1>Internal Server Error</h1><pre>Traceback (most recent call last):\n"
    b'  File "/app/openf1/api.py", line 212, in query\n'
    b"    results = collection.find(filters, max_time_ms=5000)\n"
    b"pymongo.errors.ExecutionTimeout: operation exceeded time limit</pre></body></html>"
)
RATE_WINDOW_S = 10.0


class F1UpstreamServer(HTTPService):
    """The F1 upstream on a background thread; also a context manager.

    ``dataset``, ``faults``, ``data_faults``, ``clock`` and ``stats`` are live: change
    them (or call the methods below) at any time and the next request sees the change.
    """

    thread_name = "f1-upstream"

    def __init__(
        self,
        dataset: F1Dataset | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        faults: F1Faults | F1FaultConfig | None = None,
        speed: float = 60.0,
        log_size: int = 10_000,
    ) -> None:
        super().__init__(host=host, port=port)
        self.dataset = dataset if dataset is not None else F1Dataset.build(rounds=(1,))
        self.faults = faults if isinstance(faults, F1Faults) else F1Faults(faults)
        self.data_faults = DataFaults()
        self.clock = LiveClock(speed)
        self.stats = Stats(log_size, rate_window_s=RATE_WINDOW_S)
        self.token = token
        self.randomness = Randomness(self.faults.config.seed)
        self.limiter = RateLimiter()
        self._cache: dict[str, tuple[float, Response]] = {}
        self._cache_lock = threading.Lock()

    # -- admin actions, for in-process tests -------------------------------------------

    def replay(self, session_key: int, speed: float | None = None) -> None:
        """Start replaying a session from its scheduled start, now."""
        admin.set_clock(self.dataset, self.clock,
                        {"replay": session_key, **({} if speed is None else {"speed": speed})})

    def set_clock(self, session_key: int, seconds_after_start: float, speed: float = 0.0
                  ) -> None:
        """Stop (or run at ``speed``) the clock this long after a session's start."""
        admin.set_clock(self.dataset, self.clock,
                        {"session_key": session_key, "at": seconds_after_start, "speed": speed})

    def reset(self, dataset: bool = True, faults: bool = True, stats: bool = True,
              clock: bool = True) -> None:
        if dataset:
            self.dataset.reset()
        if faults:
            self.faults.reset()
            self.data_faults.clear()
            self.limiter.clear()
            self.randomness.reseed(self.faults.config.seed)
            with self._cache_lock:
                self._cache.clear()
        if stats:
            self.stats.clear()
        if clock:
            self.clock.clear()

    def info(self) -> dict[str, Any]:
        return {
            "url": self.url if self.running else None,
            "seed": self.dataset.seed,
            "auth": self.token is not None,
            "clock": self.clock.describe(),
            "counts": self.dataset.counts(),
        }

    @property
    def admin_context(self) -> admin.AdminContext:
        return admin.AdminContext(self.dataset, self.faults, self.data_faults, self.stats,
                                  self.clock, self.info, lambda parts: self.reset(**parts))

    # -- requests --------------------------------------------------------------------------

    def handle(self, request: Request) -> Response | Drop:
        arrived = time.monotonic()
        path = request.path
        if path.startswith("/_admin/"):
            return admin.handle(self.admin_context, request.method, path, request.query,
                                request.body)
        answer, fault = self._answer(request)
        self.stats.record(
            arrived=arrived, method=request.method, path=path, query=request.query,
            route=api.route_template(path),
            status=None if isinstance(answer, Drop) else answer.status,
            fault=fault, duration_s=time.monotonic() - arrived)
        return answer

    def _answer(self, request: Request) -> tuple[Response | Drop, str | None]:
        config = self.faults.config
        if config.rate_limit:
            wait = self.limiter.admit(request.client, time.monotonic(),
                                      config.rate_limit_requests, config.rate_limit_window_s)
            if wait is not None:
                return Response(429, b"Rate exceeded", "text/plain",
                                (("Retry-After", retry_after_header(wait)),)), "rate_limited"
        decision = self.faults.decide(request.path)
        fault = fault_name(decision)
        released = decision.hold is None or self.faults.wait_at_gate(decision.hold, self.stopping)
        if not released or (decision.delay_s > 0 and self.stopping.wait(decision.delay_s)):
            return Drop("close"), fault
        if decision.action == "drop":
            return Drop(decision.drop_mode), fault
        injected = self._fault_response(decision, config)
        if injected is not None:
            return injected, fault
        if self.token is not None and not bearer_authorized(
                request.headers.get("Authorization"), self.token):
            return detail(401, "Not authenticated", (("WWW-Authenticate", "Bearer"),)), fault
        if request.method != "GET":
            return detail(405, "Method Not Allowed", (("Allow", "GET"),)), fault
        response = self._cached(request, config)
        if decision.action == "malformed" and response.status == 200:
            return malformed_response(response, decision), fault
        return response, fault

    def _cached(self, request: Request, config: F1FaultConfig) -> Response:
        if config.cache_s <= 0:
            return self._api(request, config)
        key = f"{request.path}?{request.query}"
        now = time.monotonic()
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        response = self._api(request, config)
        if response.status in (200, 404):
            with self._cache_lock:
                self._cache[key] = (now + config.cache_s, response)
        return response

    def _api(self, request: Request, config: F1FaultConfig) -> Response:
        context = ApiContext(self.dataset, self.clock, self.data_faults, config, self.randomness)
        return api.handle(context, request.path, request.query)

    def _fault_response(self, decision: FaultDecision, config: F1FaultConfig
                        ) -> Response | None:
        status = decision.status
        if decision.action in ("none", "malformed", "drop") or status is None:
            return None
        if status == 429:
            headers: tuple[tuple[str, str], ...] = ()
            if not self.randomness.chance(config.retry_after_omit_rate):
                headers = (("Retry-After", str(decision.retry_after_s or 0)),)
            return Response(429, b'{"detail":"Too Many Requests"}', JSON_TYPE, headers)
        if status >= 500:
            # Upstream trouble arrives as the proxy's or the app server's HTML page.
            page = _TRACEBACK_PAGE if status == 500 else nginx_error_page(status)
            return Response(status, page, "text/html")
        return detail(status, f"injected {decision.action} fault")

