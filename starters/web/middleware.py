"""Headers every answer carries (no framing, no sniffing, scripts only from here) and
an access log that never holds a key: the path without its query (`/login?key=`), and
the key's name, not the key."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeworks.logging import get_logger
from starters.web.problems import problem_json

log = get_logger("pipeworks.web.access")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
     b"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'"),
]


# No route takes more: a start's input or a cancel's reason are small.
MAX_BODY_BYTES = 64 * 1024


class BodyTooLarge(Exception):
    pass


class SecurityAndAccessLog:
    """Outermost of ours: also answers what nothing else did (a body too large, a bug)
    as a problem, with the same headers and log line as every other answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        received = 0

        async def receiving() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise BodyTooLarge
            return message

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                present = {name for name, _ in headers}
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                message["headers"] = headers
            await send(message)

        declared = dict(scope.get("headers", [])).get(b"content-length", b"0")
        try:
            if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                raise BodyTooLarge
            await self.app(scope, receiving, sending)
        except BodyTooLarge:
            if status == 0:
                await problem_json(413, "Content Too Large", f"a request body may have "
                                   f"{MAX_BODY_BYTES} bytes at most", scope["path"]
                                   )(scope, receive, sending)
        except Exception:
            log.exception("request failed", method=scope["method"], path=scope["path"])
            if status == 0:
                await problem_json(500, "Internal Server Error", "the server failed to "
                                   "answer; its log says why", scope["path"]
                                   )(scope, receive, sending)
        finally:
            principal = getattr(scope.get("state", {}).get("principal"), "name", None)
            log.info("request", method=scope["method"], path=scope["path"], status=status,
                     key=principal, ms=round((time.perf_counter() - started) * 1000, 1))
