"""Switchable latency and transport faults for the dev stack's demo upstreams.

Every request draws the same four numbers from the fault RNG whatever the outcome, so
the fate of the n-th request depends only on the seed, n and the configured rates: a run
with a given seed and a sequential client is reproducible. Admin requests never reach
this module.

Two switches put a failure at an exact point of a client's run rather than at a rate:
``path_pass_count`` lets the first N requests matching ``path_status`` through (so a
sequential client's page N+1 fails), and ``hold_after`` holds every request after the
first N until the configuration changes (so a test can act while a run stands still).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import random
import threading
from dataclasses import dataclass
from typing import Any, Generic, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from devstack.http_server import JSON_TYPE, Response

FaultAction = Literal[
    "none", "drop", "error", "rate_limit", "html", "malformed", "path", "fail_next"
]
MalformedStyle = Literal["truncated", "html", "wrong_shape", "empty"]
_MALFORMED_STYLES: tuple[MalformedStyle, ...] = ("truncated", "html", "wrong_shape", "empty")


def _probability() -> Any:
    return Field(default=0.0, ge=0.0, le=1.0)


class FaultConfig(BaseModel):
    """The transport faults every upstream has; an upstream's config may add fields
    (a subclass), and ``PUT /_admin/faults`` takes exactly the subclass's shape."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    latency_ms: float = Field(default=0.0, ge=0.0)
    jitter_ms: float = Field(default=0.0, ge=0.0)
    # Probabilities of one outcome per request; together they must not exceed 1.
    error_rate: float = _probability()
    error_statuses: tuple[int, ...] = (500, 503)
    rate_limit_rate: float = _probability()
    retry_after_s: int = Field(default=1, ge=0)
    drop_rate: float = _probability()
    drop_mode: Literal["reset", "close"] = "reset"
    html_rate: float = _probability()
    html_status: int = Field(default=502, ge=400, le=599)
    malformed_rate: float = _probability()
    # Extra delay for a share of requests, e.g. to trip client timeouts.
    slow_rate: float = _probability()
    slow_ms: float = Field(default=5000.0, ge=0.0)
    # fnmatch patterns on the request path (no query), e.g. "/v1/competitions/K3/games".
    path_status: dict[str, int] = Field(default_factory=dict)
    # With path_status: an outage that ends after this many failed requests (0: never).
    path_fail_count: int = Field(default=0, ge=0)
    # With path_status: the first this many matching requests pass unharmed, so that
    # e.g. page N+1 of a stream fails (a sequential client asks once per page).
    path_pass_count: int = Field(default=0, ge=0)
    # Requests after the first this many (counted from when this config was set) are
    # held until the config is changed or reset, or the server stops. None: no hold.
    hold_after: int | None = Field(default=None, ge=0)
    fail_next: int = Field(default=0, ge=0)
    fail_next_status: int = Field(default=503, ge=400, le=599)

    @model_validator(mode="after")
    def _check(self) -> Self:
        total = (
            self.error_rate
            + self.rate_limit_rate
            + self.drop_rate
            + self.html_rate
            + self.malformed_rate
        )
        if total > 1.0 + 1e-9:
            raise ValueError(f"fault rates add up to {total:.3f} > 1")
        if not self.error_statuses or any(not 500 <= s <= 599 for s in self.error_statuses):
            raise ValueError("error_statuses must be a non-empty list of 5xx statuses")
        if any(not 400 <= s <= 599 for s in self.path_status.values()):
            raise ValueError("path_status values must be 4xx or 5xx statuses")
        return self


@dataclass(frozen=True, slots=True)
class FaultDecision:
    delay_s: float = 0.0
    action: FaultAction = "none"
    status: int | None = None
    retry_after_s: int | None = None
    malformed_style: MalformedStyle | None = None
    drop_mode: Literal["reset", "close"] = "reset"
    # Set when the request must wait at this gate (``Faults.wait_at_gate``) first.
    hold: threading.Event | None = None


NO_FAULT = FaultDecision()


_HTML_LOGIN = (
    b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Please sign in.</body></html>"
)


def fault_name(decision: FaultDecision) -> str | None:
    """What the request log shows: the fault, and whether the request was held first."""
    action = None if decision.action == "none" else decision.action
    if decision.hold is None:
        return action
    return "held" if action is None else f"held+{action}"


def malformed_response(response: Response, decision: FaultDecision) -> Response:
    """A 200 whose body is not the JSON the API promises (a "malformed" decision)."""
    style = decision.malformed_style
    if style == "truncated":
        return Response(200, response.body[: max(len(response.body) // 2, 1)])
    if style == "html":
        return Response(200, _HTML_LOGIN, "text/html; charset=utf-8")
    if style == "wrong_shape":
        return Response(200, b'{"data":' + response.body + b',"status":"ok"}')
    return Response(200, b"", JSON_TYPE)


ConfigT = TypeVar("ConfigT", bound=FaultConfig)


class Faults(Generic[ConfigT]):
    """Thread-safe fault state: the config, its RNG and the fail-next counter."""

    def __init__(self, config_type: type[ConfigT], config: ConfigT | None = None) -> None:
        self.config_type = config_type
        self._lock = threading.Lock()
        self._initial = config or config_type()
        self._gate = threading.Event()
        self._held = 0
        self._apply(self._initial)

    def _apply(self, config: ConfigT) -> None:
        self._config = config
        self._rng = random.Random(config.seed)  # noqa: S311 - reproducible, not secret
        self._remaining = config.fail_next
        self._path_failures = 0
        self._path_passes = 0
        self._requests = 0
        self._gate.set()  # requests held under the previous config go on
        self._gate = threading.Event()

    @property
    def held(self) -> int:
        """How many requests are waiting at the ``hold_after`` gate right now."""
        with self._lock:
            return self._held

    def wait_at_gate(self, gate: threading.Event, stopping: threading.Event) -> bool:
        """Block until ``gate`` opens (True) or ``stopping`` is set (False)."""
        with self._lock:
            self._held += 1
        try:
            while not gate.wait(0.05):
                if stopping.is_set():
                    return False
            return True
        finally:
            with self._lock:
                self._held -= 1

    @property
    def config(self) -> ConfigT:
        """The config, with ``fail_next`` showing how many forced failures remain."""
        with self._lock:
            return self._config.model_copy(update={"fail_next": self._remaining})

    def set(self, config: ConfigT | None = None, **changes: Any) -> ConfigT:
        """Replace the config (or apply ``changes`` to the current one); reseeds the RNG."""
        with self._lock:
            base = config or self._config.model_copy(update={"fail_next": self._remaining})
            if changes:
                base = self.config_type.model_validate({**base.model_dump(), **changes})
            self._apply(base)
            return base

    def clear(self) -> None:
        self.set(self.config_type())

    def reset(self) -> None:
        """Back to the config the server started with."""
        with self._lock:
            self._apply(self._initial)

    def fail_next(self, count: int, status: int = 503) -> None:
        self.set(fail_next=count, fail_next_status=status)

    def decide(self, path: str) -> FaultDecision:
        with self._lock:
            decision = self._decide(path)
            if self._config.hold_after is not None and self._requests > self._config.hold_after:
                return dataclasses.replace(decision, hold=self._gate)
            return decision

    def _decide(self, path: str) -> FaultDecision:
        """The decision for one request; the caller holds ``self._lock``."""
        config = self._config
        self._requests += 1
        rng = self._rng
        jitter_u, slow_u, outcome_u, detail_u = (
            rng.random(),
            rng.random(),
            rng.random(),
            rng.random(),
        )
        delay_ms = config.latency_ms + config.jitter_ms * jitter_u
        if slow_u < config.slow_rate:
            delay_ms += config.slow_ms
        delay_s = delay_ms / 1000.0
        outage_over = 0 < config.path_fail_count <= self._path_failures
        for pattern, status in config.path_status.items():
            if not outage_over and fnmatch.fnmatchcase(path, pattern):
                if self._path_passes < config.path_pass_count:
                    self._path_passes += 1
                    break
                self._path_failures += 1
                return self._status(delay_s, "path", status, config)
        if self._remaining > 0:
            self._remaining -= 1
            return self._status(delay_s, "fail_next", config.fail_next_status, config)
        threshold = config.drop_rate
        if outcome_u < threshold:
            return FaultDecision(delay_s, "drop", drop_mode=config.drop_mode)
        threshold += config.rate_limit_rate
        if outcome_u < threshold:
            return FaultDecision(delay_s, "rate_limit", 429, config.retry_after_s)
        threshold += config.error_rate
        if outcome_u < threshold:
            status = config.error_statuses[int(detail_u * len(config.error_statuses))]
            return FaultDecision(delay_s, "error", status)
        threshold += config.html_rate
        if outcome_u < threshold:
            return FaultDecision(delay_s, "html", config.html_status)
        threshold += config.malformed_rate
        if outcome_u < threshold:
            style = _MALFORMED_STYLES[int(detail_u * len(_MALFORMED_STYLES))]
            return FaultDecision(delay_s, "malformed", malformed_style=style)
        return FaultDecision(delay_s) if delay_s else NO_FAULT

    @staticmethod
    def _status(
        delay_s: float, action: FaultAction, status: int, config: FaultConfig
    ) -> FaultDecision:
        retry_after = config.retry_after_s if status == 429 else None
        return FaultDecision(delay_s, action, status, retry_after)
