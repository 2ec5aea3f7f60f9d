"""The F1 upstream's faults.

``F1FaultConfig`` (``PUT``/``PATCH /_admin/faults``, ``--faults``) is the dev stack's
transport faults (devstack/http_faults.py: latency, jitter, drops, 5xx, 429, malformed
bodies, holds) plus what an OpenF1-like upstream adds: the 30-requests-per-10-s limit,
429s without ``Retry-After``, 422 for date windows wider than a span, 404 vs ``200 []``
for empty answers, invalid items at a rate, no order guarantee, a short answer cache.

``DataFaults`` holds the stateful data faults set through the admin API: records hidden
until revealed or for the next N requests (laps missing that reappear), and invalid
items injected into every answer of an endpoint.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import Field, model_validator

from devstack.f1.invalid import corrupt, kinds_for
from devstack.f1.records import ENDPOINTS, Item, seeded
from devstack.http_faults import FaultConfig, Faults


def _probability(default: float = 0.0) -> Any:
    return Field(default=default, ge=0.0, le=1.0)


class F1FaultConfig(FaultConfig):
    # Share of injected 429s (rate_limit_rate) sent without a Retry-After header.
    retry_after_omit_rate: float = _probability()
    # OpenF1's limit: at most rate_limit_requests per rate_limit_window_s per client
    # (by IP); over it the upstream answers 429 "Rate exceeded" with Retry-After.
    rate_limit: bool = False
    rate_limit_requests: int = Field(default=30, ge=1)
    rate_limit_window_s: float = Field(default=10.0, gt=0.0)
    # 422 for a date window wider than this (a bound left open counts up to the
    # session's start or end) on these endpoints, so clients must split and halve.
    max_window_s: float | None = Field(default=None, gt=0.0)
    max_window_endpoints: tuple[str, ...] = ("position", "intervals", "laps")
    # Empty answers: this share as 404 {"detail":"No results found."}, the rest 200 [].
    empty_not_found_rate: float = _probability(0.5)
    # Share of non-empty answers that get one invalid item added.
    invalid_rate: float = _probability()
    # The contract guarantees no order: shuffled (default), sorted by date, or reversed.
    order: Literal["shuffled", "sorted", "reversed"] = "shuffled"
    # Identical queries within this many seconds get the same answer (OpenF1: 3 s).
    cache_s: float = Field(default=0.0, ge=0.0)

    @model_validator(mode="after")
    def _check_endpoints(self) -> F1FaultConfig:
        unknown = set(self.max_window_endpoints) - set(ENDPOINTS)
        if unknown:
            raise ValueError(f"max_window_endpoints: unknown endpoints {sorted(unknown)}")
        return self


class F1Faults(Faults[F1FaultConfig]):
    def __init__(self, config: F1FaultConfig | None = None) -> None:
        super().__init__(F1FaultConfig, config)


@dataclass(slots=True)
class HideRule:
    id: int
    endpoint: str
    session_key: int
    # Field -> value or list of values; an item matching every field is hidden.
    match: dict[str, Any]
    # Requests (to this endpoint and session) still to hide from; None: until revealed.
    remaining: int | None

    def hides(self, item: Item) -> bool:
        for name, wanted in self.match.items():
            value = item.get(name)
            if isinstance(wanted, list):
                if value not in wanted:
                    return False
            elif value != wanted:
                return False
        return True


@dataclass(slots=True)
class Injection:
    id: int
    endpoint: str
    session_key: int
    items: list[Any]
    remaining: int | None


@dataclass(slots=True)
class DataFaults:
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    hidden: list[HideRule] = field(default_factory=list)
    injections: list[Injection] = field(default_factory=list)

    def hide(self, endpoint: str, session_key: int, match: Mapping[str, Any] | None = None,
             requests: int | None = None) -> int:
        """Hide matching records of a session (all of them when ``match`` is empty) until
        ``reveal``, or for the next ``requests`` requests for them."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}")
        with self._lock:
            rule = HideRule(next(self._ids), endpoint, int(session_key), dict(match or {}),
                            requests)
            self.hidden.append(rule)
            return rule.id

    def hide_lap(self, session_key: int, lap_number: int, requests: int | None = None) -> int:
        """Lap ``lap_number`` missing for every driver (the watermark trap)."""
        return self.hide("laps", session_key, {"lap_number": lap_number}, requests)

    def hide_driver_laps(self, session_key: int, driver_number: int,
                         lap_numbers: list[int] | None = None,
                         requests: int | None = None) -> int:
        """Laps of one driver missing (all of them, or just ``lap_numbers``)."""
        match: dict[str, Any] = {"driver_number": driver_number}
        if lap_numbers is not None:
            match["lap_number"] = list(lap_numbers)
        return self.hide("laps", session_key, match, requests)

    def reveal(self, rule_id: int | None = None) -> int:
        """Reveal one rule's records (or all); returns how many rules were removed."""
        with self._lock:
            before = len(self.hidden)
            self.hidden = [r for r in self.hidden if rule_id is not None and r.id != rule_id]
            return before - len(self.hidden)

    def inject_invalid(self, endpoint: str, session_key: int, *, kind: str | None = None,
                       item: Any = None, example: Item | None = None, count: int = 1,
                       requests: int | None = None, seed: int = 0) -> int:
        """Add invalid items to every answer for the endpoint and session: ``item`` as
        given, or ``count`` copies of ``example`` broken the ``kind`` way."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}")
        if item is not None:
            items = [item] * count
        else:
            if example is None:
                raise ValueError("inject_invalid needs an item, or a kind and an example")
            rng = seeded(seed, "invalid")
            items = [corrupt(endpoint, example, kind or rng.choice(kinds_for(endpoint)), rng)
                     for _ in range(count)]
        with self._lock:
            injection = Injection(next(self._ids), endpoint, int(session_key), items, requests)
            self.injections.append(injection)
            return injection.id

    def clear_invalid(self) -> None:
        with self._lock:
            self.injections.clear()

    def clear(self) -> None:
        with self._lock:
            self.hidden.clear()
            self.injections.clear()

    def apply(self, endpoint: str, session_key: int, items: list[Any]) -> list[Any]:
        """Drop hidden records and add injected items; counts one request per rule."""
        with self._lock:
            rules = [r for r in self.hidden
                     if r.endpoint == endpoint and r.session_key == session_key]
            if rules:
                items = [item for item in items if not any(rule.hides(item) for rule in rules)]
            injected = [i for i in self.injections
                        if i.endpoint == endpoint and i.session_key == session_key]
            for injection in injected:
                items = [*items, *injection.items]
            for rule in rules:
                if rule.remaining is not None:
                    rule.remaining -= 1
            for injection in injected:
                if injection.remaining is not None:
                    injection.remaining -= 1
            self.hidden = [r for r in self.hidden if r.remaining is None or r.remaining > 0]
            self.injections = [i for i in self.injections
                               if i.remaining is None or i.remaining > 0]
            return items

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {"hidden": [asdict(rule) for rule in self.hidden],
                    "invalid": [asdict(injection) for injection in self.injections]}
