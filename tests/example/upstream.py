"""The example pipeline's upstream: `GET /readings?station=S` answers a bare JSON array
(an unknown station: 404, which is permanent)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class ReadingsUpstream(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.readings: dict[str, list[dict[str, Any]]] = {}
        self.fail_status: int | None = None   # answer every request with this status
        self.gate = threading.Event()         # cleared: requests wait until it is set
        self.gate.set()
        self.requests = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: ReadingsUpstream

    def do_GET(self) -> None:
        self.server.requests += 1
        self.server.gate.wait(timeout=30)
        station = parse_qs(urlsplit(self.path).query).get("station", [""])[0]
        known = station in self.server.readings
        status = self.server.fail_status or (200 if known else 404)
        body = (json.dumps(self.server.readings[station]) if status == 200
                else json.dumps({"detail": "no such station"}))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: Any) -> None:
        return None
