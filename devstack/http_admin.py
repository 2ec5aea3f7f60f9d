"""The ``/_admin/`` routes every demo upstream has: health, info, faults and stats.

Each upstream adds its own routes (dataset mutations, a clock) and maps the exceptions
raised here (``json.JSONDecodeError``, pydantic's ``ValidationError``, ``ValueError``,
``TypeError``, ``KeyError``) to error bodies in its own API's format.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devstack.http_faults import Faults
from devstack.http_server import Response, encode_json
from devstack.http_stats import Stats


@dataclass(slots=True)
class CommonAdmin:
    faults: Faults[Any]
    stats: Stats
    info: Callable[[], dict[str, Any]]


def json_response(status: int, value: Any) -> Response:
    return Response(status, encode_json(value).encode())


def json_body(raw: bytes) -> Any:
    """The request's JSON body; an empty body reads as ``{}``."""
    if not raw.strip():
        return {}
    return json.loads(raw)


def json_object(raw: bytes) -> dict[str, Any]:
    body = json_body(raw)
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body


def flag(params: dict[str, list[str]], name: str, default: bool) -> bool:
    values = params.get(name)
    if not values:
        return default
    return values[-1] not in ("0", "false", "no")


def common_route(
    ctx: CommonAdmin, method: str, path: str, params: dict[str, list[str]], raw: bytes
) -> Response | None:
    """The answer to one of the shared routes, or None when ``path`` is not one of them."""
    endpoint = (method, path.rstrip("/"))
    if endpoint == ("GET", "/_admin/health"):
        return json_response(200, {"status": "ok"})
    if endpoint == ("GET", "/_admin/info"):
        return json_response(200, ctx.info())
    if endpoint == ("GET", "/_admin/faults"):
        return json_response(200, ctx.faults.config.model_dump(mode="json"))
    if endpoint == ("PUT", "/_admin/faults"):
        config = ctx.faults.set(ctx.faults.config_type.model_validate(json_body(raw)))
        return json_response(200, config.model_dump(mode="json"))
    if endpoint == ("PATCH", "/_admin/faults"):
        changes = json_object(raw)
        return json_response(200, ctx.faults.set(**changes).model_dump(mode="json"))
    if endpoint == ("GET", "/_admin/stats"):
        show_log = flag(params, "log", True)
        since = int(params.get("since", ["0"])[-1])
        limit = int(params["log_limit"][-1]) if "log_limit" in params else None
        return json_response(
            200, ctx.stats.snapshot(log=show_log, since_seq=since, log_limit=limit)
        )
    if endpoint == ("DELETE", "/_admin/stats"):
        ctx.stats.clear()
        return json_response(200, {"status": "cleared"})
    return None
