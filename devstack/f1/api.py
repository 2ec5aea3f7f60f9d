"""The ``/v1`` endpoints of contracts/f1-api.md, independent of the HTTP transport.

A request names an endpoint and filters. Per-session endpoints need ``session_key``
equalities (else 422); each named session is one table (devstack/f1/store.py) whose
date-sorted rows are narrowed by bisection on the date filter's envelope, then seen as
of the live clock (devstack/f1/live.py), then filtered exactly by the contract's query
semantics (devstack/f1/query.py), then passed through the data faults.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from devstack.f1 import live
from devstack.f1.clock import LiveClock
from devstack.f1.dataset import F1Dataset
from devstack.f1.faults import DataFaults, F1FaultConfig
from devstack.f1.invalid import corrupt, kinds_for
from devstack.f1.query import FieldFilter, Query, QueryError, parse_query
from devstack.f1.records import CALENDAR_ENDPOINTS, ENDPOINTS, Item, epoch
from devstack.http_server import Response, encode_json

NOT_FOUND = b'{"detail":"Not Found"}'
NO_RESULTS = b'{"detail":"No results found."}'


def detail(status: int, text: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return Response(status, encode_json({"detail": text}).encode(), headers=headers)


def route_template(path: str) -> str:
    """The stats bucket of a path."""
    if path.startswith("/v1/") and path[4:] in ENDPOINTS:
        return path
    return "/_admin" if path.startswith("/_admin/") else "(unknown)"


@dataclass(slots=True)
class Randomness:
    """The answer-shaping draws (empty style, invalid items, order), one seeded RNG."""

    seed: int = 0
    _rng: random.Random = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - reproducible, not secret

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(seed)  # noqa: S311

    def chance(self, probability: float) -> bool:
        if probability <= 0.0:
            return False
        with self._lock:
            return self._rng.random() < probability

    def shuffle(self, items: list[Any]) -> None:
        with self._lock:
            self._rng.shuffle(items)

    def rng(self) -> random.Random:
        with self._lock:
            return random.Random(self._rng.random())  # noqa: S311


@dataclass(slots=True)
class ApiContext:
    dataset: F1Dataset
    clock: LiveClock
    data_faults: DataFaults
    config: F1FaultConfig
    randomness: Randomness


def handle(ctx: ApiContext, path: str, raw_query: str) -> Response:
    """Serve one GET of a ``/v1`` path; never raises for client mistakes."""
    name = path[4:] if path.startswith("/v1/") else None
    if name is None or name not in ENDPOINTS:
        return Response(404, NOT_FOUND)
    try:
        query = parse_query(raw_query)
    except QueryError as exc:
        return detail(400, str(exc))
    if name in CALENDAR_ENDPOINTS:
        refused = _calendar_refusal(name, query)
        if refused is not None:
            return refused
        items = _calendar_items(ctx, name, query)
    else:
        keys = [key for key in query.values_of("session_key")
                if isinstance(key, int) and not isinstance(key, bool)]
        if not keys:
            return detail(422, f"{name} needs a session_key filter (session_key=<int>)")
        items = []
        for session_key in keys:
            found = _session_items(ctx, name, session_key, query)
            if isinstance(found, Response):
                return found
            items.extend(found)
    return _answer(ctx, name, items)


def _calendar_refusal(name: str, query: Query) -> Response | None:
    allowed = {"meetings": ("year", "date_start", "meeting_key"),
               "sessions": ("year", "meeting_key", "date_start", "session_key")}[name]
    if any(field_name in query.fields for field_name in allowed):
        return None
    return detail(422, f"{name} needs one of the filters {', '.join(allowed)}")


def _calendar_items(ctx: ApiContext, name: str, query: Query) -> list[Any]:
    table = ctx.dataset.table(name)
    if table is None:
        return []
    low, high = _envelope(query.fields.get("date_start"))
    return query.select([row.item for row in table.rows(low, high)])


def _session_items(ctx: ApiContext, name: str, session_key: int, query: Query
                   ) -> list[Any] | Response:
    table = ctx.dataset.table(name, session_key)
    if table is None:
        return []  # an unknown session: nothing, as OpenF1 answers
    info = ctx.dataset.session(session_key)
    spec = ENDPOINTS[name]
    if spec.session_types is not None and info.type not in spec.session_types:
        return []
    now = ctx.clock.now()
    finished = ctx.dataset.finished(session_key)
    if now is not None:
        if now < info.start:
            return []  # not started yet: nothing exists
        if now >= finished:
            now = None  # over: complete
    condition = query.fields.get(spec.date_field) if spec.date_field else None
    low, high = _envelope(condition)
    limit = ctx.config.max_window_s
    if limit is not None and name in ctx.config.max_window_endpoints:
        span_end = finished if now is None else min(now, finished)
        span = (span_end if high is None else high) - (info.start if low is None else low)
        if span > limit:
            return detail(422, f"query too broad: a {name} date window of {span:.0f} s "
                               f"exceeds {limit:.0f} s; narrow it")
    if now is not None:
        high = now if high is None else min(high, now)
    seen: list[Item] = []
    for row in table.rows(low, high):
        item = live.at(name, row, now)
        if item is not None:
            seen.append(item)
    selected = query.select(seen)
    return ctx.data_faults.apply(name, session_key, list(selected))


def _envelope(condition: FieldFilter | None) -> tuple[float | None, float | None]:
    """The widest [low, high] a date filter can match, for bisection (None: open). Any
    bound that is not a timestamp disables narrowing: the exact filter decides."""
    if condition is None:
        return None, None
    lows: list[float | None] = []
    highs: list[float | None] = []
    for value in condition.equals:
        if not isinstance(value, datetime):
            return None, None
        lows.append(epoch(value))
        highs.append(epoch(value))
    for low, high in condition.intervals:
        for bound, out in ((low, lows), (high, highs)):
            if bound is None:
                out.append(None)
            elif isinstance(bound.value, datetime):
                out.append(epoch(bound.value))
            else:
                return None, None
    low_value = None if not lows or None in lows else min(v for v in lows if v is not None)
    high_value = None if not highs or None in highs else max(v for v in highs if v is not None)
    return low_value, high_value


def _answer(ctx: ApiContext, name: str, items: list[Any]) -> Response:
    config = ctx.config
    randomness = ctx.randomness
    if not items:
        if randomness.chance(config.empty_not_found_rate):
            return Response(404, NO_RESULTS)
        return Response(200, b"[]")
    if randomness.chance(config.invalid_rate):
        rng = randomness.rng()
        valid = [item for item in items if isinstance(item, dict)]
        if valid:
            example = rng.choice(valid)
            broken = corrupt(name, example, rng.choice(kinds_for(name)), rng)
            items = [*items]
            items.insert(rng.randrange(len(items) + 1), broken)
    if config.order == "shuffled":
        items = list(items)
        randomness.shuffle(items)
    else:
        date_field = ENDPOINTS[name].date_field
        items = sorted(items, key=lambda item: _sort_key(item, date_field),
                       reverse=config.order == "reversed")
    return Response(200, orjson.dumps(items))


def _sort_key(item: Any, date_field: str | None) -> tuple[str, str]:
    if not isinstance(item, dict):
        return ("~", str(item))
    value = item.get(date_field) if date_field else None
    return (str(value or ""), str(item.get("driver_number", "")))
