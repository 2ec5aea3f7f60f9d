"""`pipeworks codec-server`: Temporal's remote codec protocol over HTTP, so that the
Web UI and the `temporal` CLI can show encrypted payloads to users who hold the keys.

POST /encode and /decode take and return `{"payloads": [{"metadata": {k: base64},
"data": base64}]}` (the protobuf JSON form of `Payloads`). The Web UI calls it from
the browser, cross-origin, so preflights from the configured origins are answered,
with `Authorization`, `Content-Type` and `X-Namespace` allowed.

Who can reach this server can decrypt, so it binds to 127.0.0.1 by default: the keys
never leave the machine of the user looking at the Web UI. Requests naming another
namespace in `X-Namespace` are refused: one codec server serves one namespace's keys.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

from google.protobuf import json_format
from rich.console import Console
from temporalio.api.common.v1 import Payloads

from pipeworks.codec import DecryptionError, EncryptionCodec
from pipeworks.logging import get_logger
from pipeworks.settings import ConfigError, Settings
from pipeworks.temporal_client import data_converter

MAX_BODY_BYTES = 64 * 1024 * 1024  # well above Temporal's own payload size limits
ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace"
log = get_logger("pipeworks.codec_server")


class CodecServer:
    """The HTTP server on its own thread; `start`/`stop` for tests and the CLI."""

    def __init__(self, codec: EncryptionCodec, address: str, origins: tuple[str, ...],
                 namespace: str) -> None:
        host, _, port = address.rpartition(":")
        self.codec = codec
        self.origins = frozenset(origins)
        self.namespace = namespace
        try:
            self._httpd = _Server((host.strip("[]"), int(port)), _Handler, self)
        except OSError as err:
            raise ConfigError(f"PIPEWORKS_CODEC_SERVER_ADDRESS={address}: cannot listen: "
                              f"{err.strerror or err}") from None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        host = str(host)
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def start(self) -> CodecServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        name="codec-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[_Handler],
                 codec_server: CodecServer) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)
        self.codec_server = codec_server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the Web UI sends many small requests
    server: _Server

    # -- the protocol ----------------------------------------------------------------

    def do_OPTIONS(self) -> None:
        if not self._origin_allowed():
            self._reply(HTTPStatus.FORBIDDEN, {"error": "origin not allowed"})
            return
        self._reply(HTTPStatus.NO_CONTENT, None, {
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": "600"})

    def do_POST(self) -> None:
        # The body is read first, even for a refusal: left unread on a kept-alive
        # connection, it would be parsed as the next request.
        body = self._body()
        if body is None:
            return
        codec = self.server.codec_server.codec
        operation = {"/encode": codec.encrypt, "/decode": codec.decrypt}.get(
            self.path.split("?", 1)[0].rstrip("/"))
        if operation is None:
            self._reply(HTTPStatus.NOT_FOUND, {"error": "POST /encode or /decode"})
            return
        if problem := self._refusal():
            self._reply(*problem)
            return
        try:
            payloads = json_format.Parse(body, Payloads())
        except (json_format.ParseError, UnicodeDecodeError) as err:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": f"not a Payloads document: {err}"})
            return
        try:
            result = Payloads(payloads=operation(payloads.payloads))
        except DecryptionError as err:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": str(err)})
            return
        self._reply(HTTPStatus.OK, json_format.MessageToDict(result))

    # -- checks ----------------------------------------------------------------------

    def _origin_allowed(self) -> bool:
        origin = self.headers.get("Origin")
        return origin is None or origin in self.server.codec_server.origins

    def _refusal(self) -> tuple[HTTPStatus, dict[str, str]] | None:
        if not self._origin_allowed():
            return HTTPStatus.FORBIDDEN, {"error": "origin not allowed"}
        namespace = self.headers.get("X-Namespace")
        served = self.server.codec_server.namespace
        if namespace and namespace != served:
            return HTTPStatus.FORBIDDEN, {
                "error": f"this codec server serves namespace {served!r}, not {namespace!r}"}
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            # Also what makes a browser preflight every request, so CORS always applies.
            return HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "Content-Type must be "
                                                                "application/json"}
        return None

    def _body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True  # the unread body would be parsed as a request
            status = (HTTPStatus.LENGTH_REQUIRED if length < 0
                      else HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            self._reply(status, {"error": f"Content-Length must be 0..{MAX_BODY_BYTES}"})
            return None
        return self.rfile.read(length)

    # -- responses -------------------------------------------------------------------

    def _reply(self, status: HTTPStatus, document: dict[str, Any] | None,
               headers: dict[str, str] | None = None) -> None:
        body = b"" if document is None else json.dumps(document).encode()
        self.send_response(status)
        origin = self.headers.get("Origin")
        if origin is not None and origin in self.server.codec_server.origins:
            self.send_header("Access-Control-Allow-Origin", origin)
            # The Web UI's "include cross-origin credentials" option needs this.
            self.send_header("Access-Control-Allow-Credentials", "true")
        self.send_header("Vary", "Origin")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if document is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines only (method, path, status): bodies are the secrets.
        log.debug("codec request", request=format % args, client=self.client_address[0])


def codec_server_from(settings: Settings) -> CodecServer:
    converter = data_converter(settings)
    if converter is None or not isinstance(converter.payload_codec, EncryptionCodec):
        raise ConfigError("PIPEWORKS_ENCRYPTION_KEYS is not set: the codec server has no key "
                          "to decode with")
    return CodecServer(converter.payload_codec, settings.codec_server_address,
                       settings.codec_allowed_origins, settings.temporal_namespace)


def serve(settings: Settings, console: Console) -> int:
    """Runs until SIGINT/SIGTERM; returns the exit status."""
    server = codec_server_from(settings).start()
    keyring = server.codec.keyring
    console.print(
        f"codec server on [bold]{server.url}[/] for namespace {settings.temporal_namespace}: "
        f"keys {', '.join(keyring.key_ids)} (encrypting with {keyring.current_id}); "
        f"Web UI origins {', '.join(sorted(server.origins))}", highlight=False,
        soft_wrap=True)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_stop)
    stop.wait()
    server.stop()
    return 0
