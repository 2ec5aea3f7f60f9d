"""``/_admin/`` endpoints: health, faults, stats, reset and dataset mutations.

They exist for tests and the CLI driving a server in another process; in-process tests
can use ``UpstreamServer.dataset`` / ``.faults`` / ``.stats`` directly. They bypass
faults, auth and stats so that controlling the server never disturbs what is measured.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from pydantic import ValidationError

from devstack.sports.api import Response, error_response
from devstack.sports.dataset import Dataset
from devstack.sports.faults import FaultConfig, Faults
from devstack.sports.listing import encode
from devstack.sports.stats import Stats

# Dataset methods callable through POST /_admin/dataset: {"op": name, "args": {...}}.
_DATASET_OPS = frozenset(
    {
        "update_game",
        "remove_game",
        "add_game",
        "update_team",
        "remove_team",
        "add_team",
        "inject_invalid",
        "duplicate_item",
        "clear_invalid",
        "expected_games",
        "expected_teams",
        "counts",
    }
)


@dataclass(slots=True)
class AdminContext:
    dataset: Dataset
    faults: Faults
    stats: Stats
    info: Callable[[], dict[str, Any]]


def _json(status: int, value: Any) -> Response:
    return Response(status, encode(value).encode())


def _body(raw: bytes) -> Any:
    if not raw.strip():
        return {}
    return json.loads(raw)


def handle(ctx: AdminContext, method: str, path: str, query: str, raw_body: bytes) -> Response:
    try:
        return _dispatch(ctx, method, path, parse_qs(query), raw_body)
    except json.JSONDecodeError as exc:
        return error_response(400, "bad_json", str(exc))
    except ValidationError as exc:
        return error_response(422, "invalid_config", exc.json())
    except KeyError as exc:
        return error_response(404, "not_found", str(exc))
    except (TypeError, ValueError) as exc:
        return error_response(422, "invalid_request", str(exc))


def _dispatch(
    ctx: AdminContext, method: str, path: str, params: dict[str, list[str]], raw: bytes
) -> Response:
    endpoint = (method, path.rstrip("/"))
    if endpoint == ("GET", "/_admin/health"):
        return _json(200, {"status": "ok"})
    if endpoint == ("GET", "/_admin/info"):
        return _json(200, ctx.info())
    if endpoint == ("GET", "/_admin/faults"):
        return _json(200, ctx.faults.config.model_dump(mode="json"))
    if endpoint == ("PUT", "/_admin/faults"):
        config = ctx.faults.set(FaultConfig.model_validate(_body(raw)))
        return _json(200, config.model_dump(mode="json"))
    if endpoint == ("PATCH", "/_admin/faults"):
        changes = _body(raw)
        if not isinstance(changes, dict):
            raise ValueError("body must be a JSON object")
        return _json(200, ctx.faults.set(**changes).model_dump(mode="json"))
    if endpoint == ("GET", "/_admin/stats"):
        show_log = params.get("log", ["1"])[-1] not in ("0", "false", "no")
        since = int(params.get("since", ["0"])[-1])
        limit = int(params["log_limit"][-1]) if "log_limit" in params else None
        return _json(200, ctx.stats.snapshot(log=show_log, since_seq=since, log_limit=limit))
    if endpoint == ("DELETE", "/_admin/stats"):
        ctx.stats.clear()
        return _json(200, {"status": "cleared"})
    if endpoint == ("POST", "/_admin/reset"):
        return _json(200, _reset(ctx, _body(raw)))
    if endpoint == ("POST", "/_admin/dataset"):
        return _json(200, {"result": _dataset_op(ctx.dataset, _body(raw))})
    return error_response(404, "not_found", f"no admin endpoint {method} {path}")


def _reset(ctx: AdminContext, options: Any) -> dict[str, bool]:
    """Reset dataset, faults and stats; a body like {"dataset": false} keeps a part."""
    if not isinstance(options, dict):
        raise ValueError("body must be a JSON object")
    done = {part: bool(options.get(part, True)) for part in ("dataset", "faults", "stats")}
    if done["dataset"]:
        ctx.dataset.reset()
    if done["faults"]:
        ctx.faults.reset()
    if done["stats"]:
        ctx.stats.clear()
    return done


def _dataset_op(dataset: Dataset, request: Any) -> Any:
    if not isinstance(request, dict) or request.get("op") not in _DATASET_OPS:
        raise ValueError(f"body must be {{'op': one of {sorted(_DATASET_OPS)}, 'args': {{...}}}}")
    args = request.get("args") or {}
    if not isinstance(args, dict):
        raise ValueError("args must be a JSON object")
    result = getattr(dataset, request["op"])(**args)
    return result
