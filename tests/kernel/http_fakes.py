"""A recording `httpx.MockTransport` and helpers for the HTTP client and pagination tests:
no servers, every request the client sent is kept for exact assertions."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from pipeworks.http import UpstreamClient

Reply = httpx.Response | Exception
Handler = Callable[[httpx.Request], Reply]


@dataclass
class Seen:
    method: str
    target: str  # raw path and query, exactly as sent on the wire
    headers: httpx.Headers
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]


@dataclass
class Recorder:
    """Answers with `handler`, or with `script` in order (one reply per request)."""

    handler: Handler | None = None
    script: list[Reply] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(Seen(request.method, request.url.raw_path.decode("ascii"),
                              request.headers, request.read()))
        reply = self.handler(request) if self.handler else self.script.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    @property
    def targets(self) -> list[str]:
        return [s.target for s in self.seen]


class Sleeps(list[float]):
    """An injectable `sleep` that only records what it was asked to wait."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_client(recorder: Recorder, **kwargs: Any) -> UpstreamClient:
    options: dict[str, Any] = {"max_attempts": 3, "backoff_base_seconds": 0.0,
                               "backoff_max_seconds": 0.0}
    options.update(kwargs)
    return UpstreamClient("http://upstream.test", transport=httpx.MockTransport(recorder),
                          **options)


def scripted(*replies: Reply) -> Recorder:
    return Recorder(script=list(replies))


def json_reply(payload: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()
               ) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(payload).encode(),
                          headers=[("Content-Type", "application/json"), *headers])
