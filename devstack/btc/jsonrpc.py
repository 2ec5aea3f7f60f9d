"""JSON-RPC over HTTP as Bitcoin Core >= 28 answers it (src/httprpc.cpp, src/rpc/request.cpp).

- A single legacy request (``"jsonrpc": "1.0"`` or none): ``{"result", "error", "id"}``,
  HTTP 200 on success, else the error with HTTP 400 (-32600), 404 (-32601) or 500.
- A single ``"jsonrpc": "2.0"`` request: always HTTP 200 with ``result`` or ``error``
  (and ``"jsonrpc": "2.0"``), unless the request object itself is malformed (400); a
  request without ``id`` is a notification: executed, answered 204.
- A batch (JSON array): HTTP 200 and one reply per non-notification element, in order.
- A body that is not JSON: -32700 ``Parse error``, HTTP 500, no ``id``.
- A method outside the whitelist: HTTP 403, empty; a batch containing one is refused whole.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from devstack.btc.jsonout import dumps
from devstack.btc.rpc_methods import RpcError, type_name

log = logging.getLogger(__name__)

LEGACY, V2 = "1.0", "2.0"
JSON_CONTENT = "application/json"

Execute = Callable[[str, Any, Any, str], Any]


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    # What the request log files it under: the method, "batch", or the failure.
    route: str
    content_type: str = JSON_CONTENT


@dataclass(slots=True)
class _Request:
    has_id: bool = False
    id: Any = None
    version: str = LEGACY
    method: str = ""
    params: Any = field(default_factory=list)

    @property
    def notification(self) -> bool:
        return self.version == V2 and not self.has_id


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse(value: Any, request: _Request) -> None:
    """JSONRPCRequest::parse: fills ``request`` as far as it gets, then raises."""
    if not isinstance(value, dict):
        raise RpcError(-32600, "Invalid Request object")
    if "id" in value:
        request.has_id, request.id = True, value["id"]
    version = value.get("jsonrpc")
    if version is not None:
        if not isinstance(version, str):
            raise RpcError(-32600, "jsonrpc field must be a string")
        if version not in (LEGACY, V2):
            raise RpcError(-32600, "JSON-RPC version not supported")
        request.version = version
    method = value.get("method")
    if method is None:
        raise RpcError(-32600, "Missing method")
    if not isinstance(method, str):
        raise RpcError(-32600, "Method must be a string")
    request.method = method
    params = value.get("params")
    if params is None:
        request.params = []
    elif isinstance(params, list | dict):
        request.params = params
    else:
        raise RpcError(-32600, "Params must be an array or object")


def _reply(request: _Request, result: Any = None, error: RpcError | None = None
           ) -> dict[str, Any]:
    """JSONRPCReplyObj: both members in legacy replies, one of them in 2.0 replies."""
    reply: dict[str, Any] = {}
    if request.version == V2:
        reply["jsonrpc"] = V2
    if error is None:
        reply["result"] = result
        if request.version == LEGACY:
            reply["error"] = None
    else:
        if request.version == LEGACY:
            reply["result"] = None
        reply["error"] = {"code": error.code, "message": error.message}
    if request.has_id:
        reply["id"] = request.id
    return reply


def _json(status: int, value: Any, route: str) -> Reply:
    return Reply(status, (dumps(value) + "\n").encode(), route)


def _error(request: _Request, error: RpcError, route: str) -> Reply:
    """JSONErrorReply: the HTTP status follows the error code."""
    status = {-32600: 400, -32601: 404}.get(error.code, 500)
    return _json(status, _reply(request, error=error), route)


def _execute(request: _Request, execute: Execute, catch: bool) -> dict[str, Any]:
    try:
        result = execute(request.method, request.params, request.id, request.version)
    except RpcError as error:
        if not catch:
            raise
        return _reply(request, error=error)
    return _reply(request, result)


def process(body: bytes, execute: Execute, whitelist: frozenset[str] | None = None) -> Reply:
    """The reply to one ``POST /`` body (after authentication). ``whitelist``: the only
    methods allowed (-rpcwhitelist), None for all."""
    try:
        value = json.loads(body.decode("utf-8"), parse_float=Decimal,
                           parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return _error(_Request(), RpcError(-32700, "Parse error"), "parse_error")
    if isinstance(value, dict):
        return _single(value, execute, whitelist)
    if isinstance(value, list):
        return _batch(value, execute, whitelist)
    return _error(_Request(), RpcError(-32700, "Top-level object parse error"), "parse_error")


def _single(value: dict[str, Any], execute: Execute, whitelist: frozenset[str] | None
            ) -> Reply:
    request = _Request()
    try:
        _parse(value, request)
    except RpcError as error:
        return _error(request, error, "invalid_request")
    if whitelist is not None and request.method not in whitelist:
        return Reply(403, b"", request.method, "text/plain")
    if request.version == V2:
        reply = _execute(request, execute, catch=True)
        if request.notification:
            return Reply(204, b"", request.method, "text/plain")
        return _json(200, reply, request.method)
    try:
        return _json(200, _execute(request, execute, catch=False), request.method)
    except RpcError as error:
        return _error(request, error, request.method)


def _batch(items: list[Any], execute: Execute, whitelist: frozenset[str] | None) -> Reply:
    if whitelist is not None:
        # Core checks every element's method first and refuses the batch as a whole.
        for item in items:
            if not isinstance(item, dict):
                return _error(_Request(), RpcError(-32600, "Invalid Request object"), "batch")
            method = item.get("method")
            if not isinstance(method, str):
                message = (f"JSON value of type {type_name(method)} is not of expected "
                           "type string")
                return _error(_Request(), RpcError(-32700, message), "batch")
            if method not in whitelist:
                return Reply(403, b"", "batch", "text/plain")
    replies = []
    for item in items:
        request = _Request()
        try:
            _parse(item, request)
            reply = _execute(request, execute, catch=True)
        except RpcError as error:
            reply = _reply(request, error=error)
        if not request.notification:
            replies.append(reply)
    if items and not replies:
        return Reply(204, b"", "batch", "text/plain")
    return _json(200, replies, "batch")
