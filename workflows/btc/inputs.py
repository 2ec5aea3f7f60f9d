"""The Bitcoin workflows' inputs (interfaces.md, "Bitcoin reconciliation pipeline")."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator
from temporalio.common import SearchAttributeKey

from activities.btc import PIPELINE
from activities.btc.search_attributes import BTC_NETWORK
from pipeworks.inputs import RunInput

MAX_HEIGHT = 2**31 - 1
Network = Literal["main", "test", "testnet4", "signet", "regtest"]


class BtcInput(RunInput):
    PIPELINE: ClassVar[str] = PIPELINE
    SOURCES: ClassVar[dict[str, str]] = {
        **RunInput.SOURCES, "from_height": "--from", "to_height": "--to",
        "network": "PIPEWORKS_BTC_NETWORK",
    }

    from_height: StrictInt | None = Field(default=None, ge=0, le=MAX_HEIGHT)
    to_height: StrictInt | None = Field(default=None, ge=0, le=MAX_HEIGHT)
    # The chain the run expects (the starter sets PIPEWORKS_BTC_NETWORK): it names the
    # workflow id, and the worker refuses a node on another chain.
    network: Network = "main"
    checkpoint: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if (self.from_height is not None and self.to_height is not None
                and self.from_height > self.to_height):
            raise ValueError(f"from_height (--from) {self.from_height} is above "
                             f"to_height (--to) {self.to_height}")
        return self

    def search_attribute_pairs(self) -> list[tuple[SearchAttributeKey[str], str]]:
        return [*super().search_attribute_pairs(), (BTC_NETWORK, self.network)]


class BtcIngestInput(BtcInput):
    WORKFLOW: ClassVar[str] = "BtcIngestWorkflow"
    BATCH: ClassVar[bool] = True

    from_height: StrictInt | None = Field(default=0, ge=0, le=MAX_HEIGHT)
    # Heights per ingest batch (one activity; about 46 ms of Temporal each).
    batch_heights: StrictInt = Field(default=100, ge=1, le=5000)
    checkpoint_every_batches: StrictInt = Field(default=50, ge=1, le=10_000)

    @property
    def workflow_id(self) -> str:
        return f"btc-ingest-{self.network}"


class BatchSizing(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    initial: StrictInt = Field(default=100, ge=1)
    min: StrictInt = Field(default=1, ge=1)
    max: StrictInt = Field(default=5000, ge=1)
    target_seconds: float = Field(default=20.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if not self.min <= self.initial <= self.max:
            raise ValueError(f"need min ({self.min}) <= initial ({self.initial}) <= max "
                             f"({self.max})")
        return self


class BreakerInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    window: StrictInt = Field(default=20, ge=1, le=1000)
    min_calls: StrictInt = Field(default=5, ge=1, le=1000)
    failure_rate: float = Field(default=0.5, gt=0, le=1)
    open_seconds: float = Field(default=30.0, gt=0)
    max_open_seconds: float = Field(default=900.0, gt=0)

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min_calls > self.window:
            raise ValueError(f"min_calls ({self.min_calls}) is above window ({self.window})")
        if self.max_open_seconds < self.open_seconds:
            raise ValueError(f"max_open_seconds ({self.max_open_seconds}) is below "
                             f"open_seconds ({self.open_seconds})")
        return self


class BtcReconcileInput(BtcInput):
    WORKFLOW: ClassVar[str] = "BtcReconcileWorkflow"
    BATCH: ClassVar[bool] = True
    SOURCES: ClassVar[dict[str, str]] = {**BtcInput.SOURCES,
                                         "recheck_depth": "--recheck-depth"}

    recheck_depth: StrictInt = Field(default=144, ge=0, le=1_000_000)
    batch: BatchSizing = BatchSizing()
    max_concurrent_batches: StrictInt = Field(default=2, ge=1, le=64)
    checkpoint_every_batches: StrictInt = Field(default=50, ge=1, le=10_000)
    breaker: BreakerInput = BreakerInput()

    @property
    def workflow_id(self) -> str:
        return f"btc-reconcile-{self.network}"
