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

from devstack.http_admin import CommonAdmin, common_route, json_body, json_object, json_response
from devstack.http_stats import Stats
from devstack.sports.api import Response, error_response
from devstack.sports.dataset import Dataset
from devstack.sports.faults import Faults

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
    common = common_route(CommonAdmin(ctx.faults, ctx.stats, ctx.info), method, path, params, raw)
    if common is not None:
        return common
    endpoint = (method, path.rstrip("/"))
    if endpoint == ("POST", "/_admin/reset"):
        return json_response(200, _reset(ctx, json_object(raw)))
    if endpoint == ("POST", "/_admin/dataset"):
        return json_response(200, {"result": _dataset_op(ctx.dataset, json_body(raw))})
    return error_response(404, "not_found", f"no admin endpoint {method} {path}")


def _reset(ctx: AdminContext, options: dict[str, Any]) -> dict[str, bool]:
    """Reset dataset, faults and stats; a body like {"dataset": false} keeps a part."""
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
