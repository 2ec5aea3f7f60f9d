"""The demo upstream's HTTP server: standard library, threaded, HTTP/1.1 keep-alive.

Order of processing for an API request mirrors a real deployment with a proxy in front:
latency and faults first (the proxy or network fails before the app sees anything), then
bearer auth, then the endpoint. ``/_admin/`` requests skip all of that.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from devstack.http_faults import fault_name, malformed_response
from devstack.http_server import (
    Drop,
    HTTPService,
    Request,
    Response,
    bearer_authorized,
    nginx_error_page,
)
from devstack.http_stats import Stats
from devstack.sports import admin, api
from devstack.sports.api import error_response
from devstack.sports.dataset import Dataset
from devstack.sports.faults import FaultConfig, FaultDecision, Faults, loops_cursor

log = logging.getLogger(__name__)

_HTML_ERROR = nginx_error_page(502)
def _fault_response(decision: FaultDecision, path: str) -> Response | None:
    action, status = decision.action, decision.status
    if action in ("none", "malformed", "drop") or status is None:
        return None
    if action == "html":
        return Response(status, _HTML_ERROR, "text/html")
    headers: tuple[tuple[str, str], ...] = ()
    if status == 429:
        headers = (("Retry-After", str(decision.retry_after_s or 0)),)
        return error_response(
            429, "rate_limited", f"retry after {decision.retry_after_s} s", headers
        )
    if status == 503 and action == "error":
        # Empty bodies happen in real life (load balancers); the contract says so.
        return Response(503, b"", "text/plain")
    name = "not_found" if status == 404 else "internal_error" if status >= 500 else "injected"
    return error_response(status, name, f"injected {action} fault for {path}")


def _looping(response: Response, query: str) -> Response:
    """Point a page fetched with a cursor back at that cursor."""
    cursor = parse_qs(query).get("cursor", [None])[0]
    page = json.loads(response.body)
    if cursor is None or not isinstance(page, dict) or page.get("next_cursor") is None:
        return response
    page["next_cursor"] = cursor
    return dataclasses.replace(response, body=json.dumps(page, ensure_ascii=False).encode())


class UpstreamServer(HTTPService):
    """The demo upstream on a background thread; also a context manager.

    ``dataset``, ``faults`` and ``stats`` are live: change them at any time and the next
    request sees the change. ``token`` may be changed at run time as well.
    """

    thread_name = "upstream"

    def __init__(
        self,
        dataset: Dataset | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        faults: Faults | FaultConfig | None = None,
        log_size: int = 10_000,
    ) -> None:
        super().__init__(host=host, port=port)
        self.dataset = dataset if dataset is not None else Dataset.generate()
        self.faults = faults if isinstance(faults, Faults) else Faults(faults)
        self.stats = Stats(log_size)
        self.token = token

    @property
    def admin_context(self) -> admin.AdminContext:
        # Built per request so that tests may swap ``dataset`` or ``faults`` wholesale.
        return admin.AdminContext(self.dataset, self.faults, self.stats, self.info)

    def bad_request(self, detail: str) -> Response:
        return error_response(400, "bad_request", detail)

    def server_bug(self) -> Response:
        return error_response(500, "server_bug", "unexpected error, see server log")

    def handle(self, request: Request) -> Response | Drop:
        arrived = time.monotonic()
        path, query = request.path, request.query
        if path.startswith("/_admin/"):
            try:
                return admin.handle(self.admin_context, request.method, path, query, request.body)
            except Exception:
                log.exception("admin request failed: %s %s", request.method, path)
                return self.server_bug()
        decision = self.faults.decide(path)
        answer: Response | Drop
        released = decision.hold is None or self.faults.wait_at_gate(decision.hold, self.stopping)
        if not released or (decision.delay_s > 0 and self.stopping.wait(decision.delay_s)):
            answer = Drop("close")
        elif decision.action == "drop":
            answer = Drop(decision.drop_mode)
        else:
            try:
                answer = self._respond(decision, request)
            except Exception:
                # A bug here must not look like an injected connection drop.
                log.exception("upstream failed on %s %s", request.method, path)
                answer = self.server_bug()
        # Recorded before the response goes out, so a client that has its answer can
        # already see the request in /_admin/stats.
        self.stats.record(
            arrived=arrived,
            method=request.method,
            path=path,
            query=query,
            route=api.route_template(path),
            status=None if isinstance(answer, Drop) else answer.status,
            fault=fault_name(decision),
            duration_s=time.monotonic() - arrived,
        )
        return answer

    def _respond(self, decision: FaultDecision, request: Request) -> Response:
        path = request.path
        injected = _fault_response(decision, path)
        if injected is not None:
            return injected
        token = self.token
        if token is not None and not bearer_authorized(request.headers.get("Authorization"), token):
            return error_response(
                401,
                "unauthorized",
                "missing or wrong bearer token",
                (("WWW-Authenticate", "Bearer"),),
            )
        if request.method != "GET":
            return error_response(
                405, "method_not_allowed", f"{request.method} is not supported", (("Allow", "GET"),)
            )
        response = api.handle(self.dataset, path, request.query)
        if decision.action == "malformed" and response.status == 200:
            return malformed_response(response, decision)
        if response.status == 200 and loops_cursor(self.faults.config, path):
            return _looping(response, request.query)
        return response

    def info(self) -> dict[str, Any]:
        return {
            "url": self.url if self.running else None,
            "seed": self.dataset.seed,
            "auth": self.token is not None,
            "counts": self.dataset.counts(),
        }
