"""The demo upstream's HTTP server: standard library, threaded, HTTP/1.1 keep-alive.

Order of processing for an API request mirrors a real deployment with a proxy in front:
latency and faults first (the proxy or network fails before the app sees anything), then
bearer auth, then the endpoint. ``/_admin/`` requests skip all of that.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import json
import logging
import socket
import struct
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs

from devstack.sports import admin, api
from devstack.sports.api import JSON_TYPE, Response, error_response
from devstack.sports.dataset import Dataset
from devstack.sports.faults import FaultConfig, FaultDecision, Faults, loops_cursor
from devstack.sports.stats import Stats

log = logging.getLogger(__name__)

_HTML_ERROR = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
_HTML_LOGIN = (
    b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Please sign in.</body></html>"
)
_MAX_BODY = 1 << 20
_IDLE_TIMEOUT_S = 120.0


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], upstream: UpstreamServer) -> None:
        self.upstream = upstream
        self._connections_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._resets: set[socket.socket] = set()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Without TCP_NODELAY small responses can stall on Nagle + delayed ACK.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def mark_reset(self, request: socket.socket) -> None:
        request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with self._connections_lock:
            self._resets.add(request)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
            reset = request in self._resets
            self._resets.discard(request)
        if reset:
            # Skipping shutdown(SHUT_WR) means no FIN: close() with linger 0 sends a bare RST.
            self.close_request(request)
        else:
            super().shutdown_request(request)

    def close_connections(self) -> None:
        """Cut keep-alive connections, or their handler threads would serve after stop()."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection error from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pipeworks-upstream/1"
    sys_version = ""
    timeout = _IDLE_TIMEOUT_S
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        arrived = time.monotonic()
        upstream = self.server.upstream
        path, _, query = self.path.partition("?")
        body = self._read_body()
        if body is None:
            self.close_connection = True
            detail = "request body must have a valid Content-Length of at most 1 MiB, not chunked"
            self._send(error_response(400, "bad_request", detail))
            return
        if path.startswith("/_admin/"):
            try:
                answer = admin.handle(upstream.admin_context, self.command, path, query, body)
            except Exception:
                log.exception("admin request failed: %s %s", self.command, self.path)
                answer = error_response(500, "server_bug", "unexpected error, see server log")
            self._send(answer)
            return
        decision = upstream.faults.decide(path)
        response: Response | None = None
        released = decision.hold is None or upstream.faults.wait_at_gate(
            decision.hold, upstream.stopping
        )
        if not released or (decision.delay_s > 0 and upstream.stopping.wait(decision.delay_s)):
            self._drop("close")
        elif decision.action == "drop":
            self._drop(decision.drop_mode)
        else:
            try:
                response = self._respond(upstream, decision, path, query)
            except Exception:
                # A bug here must not look like an injected connection drop.
                log.exception("upstream failed on %s %s", self.command, self.path)
                response = error_response(500, "server_bug", "unexpected error, see server log")
        # Recorded before the response goes out, so a client that has its answer can
        # already see the request in /_admin/stats.
        upstream.stats.record(
            arrived=arrived,
            method=self.command,
            path=path,
            query=query,
            route=api.route_template(path),
            status=None if response is None else response.status,
            fault=_fault_name(decision),
            duration_s=time.monotonic() - arrived,
        )
        if response is not None:
            self._send(response)

    def _respond(
        self, upstream: UpstreamServer, decision: FaultDecision, path: str, query: str
    ) -> Response:
        injected = _fault_response(decision, path)
        if injected is not None:
            return injected
        token = upstream.token
        if token is not None and not _authorized(self.headers.get("Authorization"), token):
            return error_response(
                401,
                "unauthorized",
                "missing or wrong bearer token",
                (("WWW-Authenticate", "Bearer"),),
            )
        if self.command != "GET":
            return error_response(
                405, "method_not_allowed", f"{self.command} is not supported", (("Allow", "GET"),)
            )
        response = api.handle(upstream.dataset, path, query)
        if decision.action == "malformed" and response.status == 200:
            return _malformed(response, decision)
        if response.status == 200 and loops_cursor(upstream.faults.config, path):
            return _looping(response, query)
        return response

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        if not 0 <= length <= _MAX_BODY:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, response: Response) -> None:
        try:
            phrase = HTTPStatus(response.status).phrase
        except ValueError:
            phrase = ""
        lines = [
            f"HTTP/1.1 {response.status} {phrase}",
            f"Date: {self.date_time_string()}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
        ]
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        if self.close_connection:
            lines.append("Connection: close")
        # One write per response: fewer syscalls, and no header/body split on the wire.
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body)

    def _drop(self, mode: str) -> None:
        self.close_connection = True
        if mode == "reset":
            self.server.mark_reset(self.connection)


def _fault_name(decision: FaultDecision) -> str | None:
    """What the request log shows: the fault, and whether the request was held first."""
    action = None if decision.action == "none" else decision.action
    if decision.hold is None:
        return action
    return "held" if action is None else f"held+{action}"


def _authorized(header: str | None, token: str) -> bool:
    scheme, _, value = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode(), token.encode()
    )


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


def _malformed(response: Response, decision: FaultDecision) -> Response:
    style = decision.malformed_style
    if style == "truncated":
        return Response(200, response.body[: max(len(response.body) // 2, 1)])
    if style == "html":
        return Response(200, _HTML_LOGIN, "text/html; charset=utf-8")
    if style == "wrong_shape":
        return Response(200, b'{"data":' + response.body + b',"status":"ok"}')
    return Response(200, b"", JSON_TYPE)


class UpstreamServer:
    """The demo upstream on a background thread; also a context manager.

    ``dataset``, ``faults`` and ``stats`` are live: change them at any time and the next
    request sees the change. ``token`` may be changed at run time as well.
    """

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
        self.dataset = dataset if dataset is not None else Dataset.generate()
        self.faults = faults if isinstance(faults, Faults) else Faults(faults)
        self.stats = Stats(log_size)
        self.token = token
        self.host = host
        self._port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()

    @property
    def admin_context(self) -> admin.AdminContext:
        # Built per request so that tests may swap ``dataset`` or ``faults`` wholesale.
        return admin.AdminContext(self.dataset, self.faults, self.stats, self.info)

    @property
    def port(self) -> int:
        """The bound port once started (the requested one before)."""
        return self._port

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server is not running")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def start(self) -> Self:
        """Bind, listen and serve on a daemon thread; returns once connections are accepted."""
        if self._httpd is not None:
            raise RuntimeError("server already running")
        self.stopping.clear()
        httpd = _HTTPServer((self.host, self._port), self)
        self._port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"upstream-{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut open connections; idempotent."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self.stopping.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def info(self) -> dict[str, Any]:
        return {
            "url": self.url if self.running else None,
            "seed": self.dataset.seed,
            "auth": self.token is not None,
            "counts": self.dataset.counts(),
        }

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
