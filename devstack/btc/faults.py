"""The node emulator's faults.

``BtcFaultConfig`` (``PUT``/``PATCH /_admin/faults``, ``--faults``) is the dev stack's
transport faults (devstack/http_faults.py: latency, jitter, drops, 5xx, 429, malformed
bodies, holds) plus what a Bitcoin node adds:

- ``work_queue_rate``: a share of requests answered 503 ``Work queue depth exceeded``
  (a storm; the real capacity limit, -rpcthreads + -rpcworkqueue, applies anyway);
- ``latency_us_per_tx``: getblock and getblockstats take this long per transaction of
  the block (the cost grows with the block, as in Core); 0 for fast tests;
- ``scan_seconds``: a full ``gettxoutsetinfo`` scan (no index) takes this long;
- ``missing_block_heights`` / ``missing_undo_heights``: -1 ``Block not found on disk`` /
  ``Can't read undo data from disk`` for these heights (getblock then omits fees and
  prevouts, like a node without undo data);
- ``index_height``: coinstatsindex is still syncing at this height: -32603 above it.

Every request draws one more number from the fault RNG than the shared config does, so
runs stay reproducible per seed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import Field

from devstack.http_faults import FaultConfig, FaultDecision, Faults


class BtcFaultConfig(FaultConfig):
    work_queue_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    latency_us_per_tx: float = Field(default=20.0, ge=0.0)
    scan_seconds: float = Field(default=0.0, ge=0.0)
    missing_block_heights: tuple[int, ...] = ()
    missing_undo_heights: tuple[int, ...] = ()
    index_height: int | None = Field(default=None, ge=0)


class BtcNodeFaults(Faults[BtcFaultConfig]):
    """``BtcNodeFaults(work_queue_rate=0.3)`` or ``BtcNodeFaults(config)``."""

    def __init__(self, config: BtcFaultConfig | None = None, **settings: Any) -> None:
        if settings:
            config = BtcFaultConfig.model_validate(
                {**(config.model_dump() if config else {}), **settings})
        super().__init__(BtcFaultConfig, config)

    def _decide(self, path: str) -> FaultDecision:
        decision = super()._decide(path)
        storm = self._rng.random()
        if decision.action == "none" and storm < self._config.work_queue_rate:
            return dataclasses.replace(decision, action="error", status=503)
        return decision
