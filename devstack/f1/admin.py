"""``/_admin/`` endpoints of the F1 upstream (clients of the contract never call them).

Shared with every demo upstream (devstack/http_admin.py): ``GET /_admin/health``,
``GET /_admin/info``, ``GET|PUT|PATCH /_admin/faults``, ``GET|DELETE /_admin/stats``.
F1's own:

- ``GET /_admin/clock``; ``POST /_admin/clock`` with ``{"replay": K, "speed": 60}``
  (replay session K from its start, now) or ``{"at": ts, "speed": 0}`` (ts: ISO 8601, or
  seconds after the start of ``"session_key": K``); ``DELETE /_admin/clock`` (no clock:
  everything complete).
- ``GET /_admin/hidden``; ``POST /_admin/hidden`` with ``{"endpoint": "laps",
  "session_key": K, "match": {"lap_number": 5}, "requests": N?}`` (or ``"lap_number"``
  / ``"driver_number"`` shortcuts for laps); ``DELETE /_admin/hidden[?id=N]`` reveals.
- ``POST /_admin/invalid`` with ``{"endpoint", "session_key", "kind"?, "item"?,
  "count"?, "requests"?}``; ``DELETE /_admin/invalid``.
- ``POST /_admin/correct`` with ``{"endpoint", "session_key", "key": {...},
  "changes": {...}}``: the record with that natural key changes (latest version).
- ``POST /_admin/add`` with ``{"endpoint", "session_key", "item"}``: a record appears
  (a backfill; served from then on, whatever the clock).
- ``POST /_admin/reset`` (body ``{"dataset": false, ...}`` keeps a part): dataset
  corrections, faults, data faults, stats, clock.
- ``GET /_admin/sessions``: every session's key, name, start and data end.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from pydantic import ValidationError

from devstack.f1.api import detail
from devstack.f1.clock import LiveClock
from devstack.f1.dataset import F1Dataset
from devstack.f1.faults import DataFaults, F1Faults
from devstack.f1.records import epoch, ts
from devstack.http_admin import CommonAdmin, common_route, json_object, json_response
from devstack.http_server import Response
from devstack.http_stats import Stats


@dataclass(slots=True)
class AdminContext:
    dataset: F1Dataset
    faults: F1Faults
    data_faults: DataFaults
    stats: Stats
    clock: LiveClock
    info: Callable[[], dict[str, Any]]
    reset: Callable[[dict[str, bool]], None]


def handle(ctx: AdminContext, method: str, path: str, query: str, raw: bytes) -> Response:
    try:
        return _dispatch(ctx, method, path.rstrip("/"), parse_qs(query), raw)
    except json.JSONDecodeError as exc:
        return detail(400, f"bad JSON: {exc}")
    except ValidationError as exc:
        return detail(422, exc.json())
    except KeyError as exc:
        return detail(404, str(exc))
    except (TypeError, ValueError) as exc:
        return detail(422, str(exc))


def _dispatch(ctx: AdminContext, method: str, path: str, params: dict[str, list[str]],
              raw: bytes) -> Response:
    common = common_route(CommonAdmin(ctx.faults, ctx.stats, ctx.info), method, path, params,
                          raw)
    if common is not None:
        return common
    endpoint = (method, path)
    if endpoint == ("GET", "/_admin/clock"):
        return json_response(200, ctx.clock.describe())
    if endpoint == ("POST", "/_admin/clock"):
        set_clock(ctx.dataset, ctx.clock, json_object(raw))
        return json_response(200, ctx.clock.describe())
    if endpoint == ("DELETE", "/_admin/clock"):
        ctx.clock.clear()
        return json_response(200, ctx.clock.describe())
    if endpoint == ("GET", "/_admin/hidden"):
        return json_response(200, ctx.data_faults.describe()["hidden"])
    if endpoint == ("POST", "/_admin/hidden"):
        return json_response(200, {"id": _hide(ctx.data_faults, json_object(raw))})
    if endpoint == ("DELETE", "/_admin/hidden"):
        rule = int(params["id"][-1]) if "id" in params else None
        return json_response(200, {"revealed": ctx.data_faults.reveal(rule)})
    if endpoint == ("POST", "/_admin/invalid"):
        return json_response(200, {"id": _inject(ctx, json_object(raw))})
    if endpoint == ("DELETE", "/_admin/invalid"):
        ctx.data_faults.clear_invalid()
        return json_response(200, {"status": "cleared"})
    if endpoint == ("POST", "/_admin/correct"):
        body = json_object(raw)
        item = ctx.dataset.correct(body["endpoint"], int(body["session_key"]), body["key"],
                                   body["changes"])
        return json_response(200, item)
    if endpoint == ("POST", "/_admin/add"):
        body = json_object(raw)
        ctx.dataset.add_item(body["endpoint"], int(body["session_key"]), body["item"])
        return json_response(200, {"status": "added"})
    if endpoint == ("POST", "/_admin/reset"):
        options = json_object(raw)
        done = {part: bool(options.get(part, True))
                for part in ("dataset", "faults", "stats", "clock")}
        ctx.reset(done)
        return json_response(200, done)
    if endpoint == ("GET", "/_admin/sessions"):
        return json_response(200, [
            {"session_key": info.key, "meeting_key": info.meeting_key, "name": info.name,
             "type": info.type, "date_start": ts(info.start),
             "data_end": ts(ctx.dataset.finished(info.key))}
            for info in ctx.dataset.calendar.sessions])
    return detail(404, f"no admin endpoint {method} {path}")


def set_clock(dataset: F1Dataset, clock: LiveClock, body: dict[str, Any]) -> None:
    """Apply a ``POST /_admin/clock`` body (also used by the in-process API)."""
    speed = body.get("speed")
    if "replay" in body:
        info = dataset.session(int(body["replay"]))
        clock.replay(info.key, info.start, None if speed is None else float(speed))
        return
    if "at" not in body:
        raise ValueError('body needs "replay": session_key, or "at": timestamp')
    at = body["at"]
    session_key = body.get("session_key")
    if isinstance(at, int | float) and not isinstance(at, bool):
        if session_key is None:
            raise ValueError('a numeric "at" counts seconds from the start of "session_key"')
        moment = dataset.session(int(session_key)).start + float(at)
    elif isinstance(at, str):
        moment = epoch(datetime.fromisoformat(at))
    else:
        raise TypeError('"at" must be an ISO 8601 timestamp or seconds')
    clock.set(moment, float(speed or 0.0), None if session_key is None else int(session_key))


def _hide(faults: DataFaults, body: dict[str, Any]) -> int:
    endpoint = body.get("endpoint", "laps")
    session_key = int(body["session_key"])
    match = dict(body.get("match") or {})
    for shortcut in ("lap_number", "driver_number"):
        if shortcut in body:
            match[shortcut] = body[shortcut]
    requests = body.get("requests")
    return faults.hide(endpoint, session_key, match, None if requests is None else int(requests))


def _inject(ctx: AdminContext, body: dict[str, Any]) -> int:
    endpoint = body["endpoint"]
    session_key = int(body["session_key"])
    count = int(body.get("count", 1))
    requests = body.get("requests")
    example = None
    if "item" not in body:
        examples = ctx.dataset.items(endpoint, session_key)
        if not examples:
            raise ValueError(f"session {session_key} has no {endpoint} to copy")
        example = examples[0]
    return ctx.data_faults.inject_invalid(
        endpoint, session_key, kind=body.get("kind"), item=body.get("item"), example=example,
        count=count, requests=None if requests is None else int(requests))
