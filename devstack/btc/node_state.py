"""The node's switchable state, apart from its chain: the network it reports, pruning,
start-up warm-up, initial block download, coinstatsindex, and an outage window. Every
RPC call reads it at the moment it runs; tests and ``/_admin/`` routes change it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

from devstack.btc.consensus import check_network

OutageMode = Literal["refuse", "reset", "close"]
WARMUP_MESSAGE = "Loading block index…"


@dataclass(slots=True)
class _Warmup:
    until: float | None
    remaining: int | None
    message: str


class NodeState:
    def __init__(self, network: str, *, coinstatsindex: bool = True) -> None:
        self._lock = threading.Lock()
        self._initial = (check_network(network), coinstatsindex)
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.network, self.coinstatsindex = self._initial
            self.prune_height: int | None = None
            self.ibd = False
            self._warmup: _Warmup | None = None
            self.outage_until: float | None = None
            self.outage_mode: OutageMode = "refuse"

    def set_network(self, network: str) -> None:
        with self._lock:
            self.network = check_network(network)

    def prune(self, below: int | None) -> None:
        """Heights below ``below`` lose their block and undo data (None: none pruned)."""
        if below is not None and below < 0:
            raise ValueError("prune height must not be negative")
        with self._lock:
            self.prune_height = below

    def pruned(self, height: int) -> bool:
        prune_height = self.prune_height
        return prune_height is not None and height < prune_height

    # -- warm-up -----------------------------------------------------------------------------

    def warm_up(self, seconds: float | None = None, requests: int | None = None,
                message: str = WARMUP_MESSAGE) -> None:
        """Answer -28 until ``seconds`` passed or ``requests`` calls were answered so
        (whichever comes first); with neither, until ``end_warm_up``."""
        with self._lock:
            until = None if seconds is None else time.monotonic() + seconds
            self._warmup = _Warmup(until, requests, message)

    def end_warm_up(self) -> None:
        with self._lock:
            self._warmup = None

    def warmup_message(self) -> str | None:
        """The -28 message for this call, or None once the node is ready (counts a call)."""
        with self._lock:
            warmup = self._warmup
            if warmup is None:
                return None
            if (warmup.until is not None and time.monotonic() >= warmup.until) or (
                    warmup.remaining is not None and warmup.remaining <= 0):
                self._warmup = None
                return None
            if warmup.remaining is not None:
                warmup.remaining -= 1
            return warmup.message

    # -- outage ------------------------------------------------------------------------------

    def start_outage(self, seconds: float, mode: OutageMode) -> None:
        with self._lock:
            self.outage_until = time.monotonic() + seconds
            self.outage_mode = mode

    def end_outage(self) -> None:
        with self._lock:
            self.outage_until = None

    def outage(self) -> OutageMode | None:
        with self._lock:
            if self.outage_until is None:
                return None
            if time.monotonic() >= self.outage_until:
                self.outage_until = None
                return None
            return self.outage_mode

    def describe(self) -> dict[str, Any]:
        with self._lock:
            warmup = self._warmup
            now = time.monotonic()
            return {
                "network": self.network, "coinstatsindex": self.coinstatsindex,
                "prune_height": self.prune_height, "initialblockdownload": self.ibd,
                "warmup": None if warmup is None else {
                    "seconds_left": None if warmup.until is None else
                    max(0.0, round(warmup.until - now, 3)),
                    "requests_left": warmup.remaining, "message": warmup.message},
                "outage": None if self.outage_until is None else {
                    "seconds_left": max(0.0, round(self.outage_until - now, 3)),
                    "mode": self.outage_mode},
            }
