"""What every demo upstream of the dev stack shares: a standard-library HTTP/1.1 server
with keep-alive on a background thread, the request/response values its services
exchange, and the error bodies a real deployment's proxy would produce.

A service subclasses ``HTTPService`` and implements ``handle``: one ``Request`` in, a
``Response`` (or a ``Drop`` that cuts the connection) out. The transport here knows
nothing of routes, faults or datasets.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import socket
import struct
import threading
from dataclasses import dataclass
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self

log = logging.getLogger(__name__)

JSON_TYPE = "application/json; charset=utf-8"
_MAX_BODY = 1 << 20
_IDLE_TIMEOUT_S = 120.0
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode_json(value: Any) -> str:
    """Compact JSON, non-ASCII kept as is (bodies are UTF-8)."""
    return _ENCODER.encode(value)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = JSON_TYPE
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Drop:
    """Answer nothing and cut the connection: ``reset`` sends a bare RST, ``close`` a FIN."""

    mode: Literal["reset", "close"] = "reset"


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    # The raw query string, still percent-encoded: services decide how to parse it.
    query: str
    headers: Message
    body: bytes
    client: str


def nginx_error_page(status: int) -> bytes:
    """The HTML error page a proxy in front of the app answers with (not JSON)."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    title = f"{status} {phrase}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


def bearer_authorized(header: str | None, token: str) -> bool:
    scheme, _, value = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode(), token.encode()
    )


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], service: HTTPService) -> None:
        self.service = service
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
        service = self.server.service
        path, _, query = self.path.partition("?")
        body = self._read_body()
        if body is None:
            self.close_connection = True
            detail = "request body must have a valid Content-Length of at most 1 MiB, not chunked"
            self._send(service.bad_request(detail))
            return
        request = Request(self.command, path, query, self.headers, body, self.client_address[0])
        try:
            answer = service.handle(request)
        except Exception:
            # A bug must not look like an injected connection drop.
            log.exception("%s failed on %s %s", type(service).__name__, self.command, self.path)
            answer = service.server_bug()
        if isinstance(answer, Drop):
            self.close_connection = True
            if answer.mode == "reset":
                self.server.mark_reset(self.connection)
            return
        self._send(answer)

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


class HTTPService:
    """A server on a daemon thread; also a context manager. Subclasses answer requests.

    ``stopping`` is set while the server stops, so a handler that sleeps (latency, a held
    request) can give up early instead of delaying shutdown.
    """

    thread_name = "http-service"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()

    def handle(self, request: Request) -> Response | Drop:
        raise NotImplementedError

    def bad_request(self, detail: str) -> Response:
        """The answer to a request whose body cannot be read."""
        return Response(400, encode_json({"detail": detail}).encode())

    def server_bug(self) -> Response:
        return Response(500, encode_json({"detail": "unexpected error, see server log"}).encode())

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
            name=f"{self.thread_name}-{self._port}",
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
