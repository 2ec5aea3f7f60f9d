"""Adaptive batch size for the reconciliation (interfaces.md): the next batch's weight
is the target seconds divided by the measured cost per unit of weight, a block's weight
being its transaction count (what getblockstats' cost grows with). Converted to heights
with the measured weight per height, bounded by min and max, growing at most twice as big per
step, halved after a failed batch.

Plain state in the workflow (deterministic: fed only by activity results), carried
through continue-as-new, and seeded from earlier runs' batch history."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# Weight of the measurements already made against a new one (an exponential average:
# one slow batch moves the size, it does not decide it).
_KEEP = 0.5


@dataclass
class BatchSizer:
    size: int
    minimum: int
    maximum: int
    target_seconds: float
    ms_per_weight: float | None = None
    weight_per_height: float | None = None

    @classmethod
    def seeded(cls, initial: int, minimum: int, maximum: int, target_seconds: float,
               ms_per_weight: float | None, weight_per_height: float | None) -> BatchSizer:
        """From the batch history of earlier runs when there is one ("sizing from
        historical processing times"), else `initial`."""
        sizer = cls(initial, minimum, maximum, target_seconds, ms_per_weight,
                    weight_per_height)
        if ms_per_weight and weight_per_height:
            sizer.size = sizer._clamp(sizer._ideal(), maximum)
        return sizer

    def observe(self, heights: int, weight: int, wall_ms: int) -> None:
        """A committed batch: its heights, weight and wall time."""
        if heights <= 0:
            return
        weight = max(weight, heights)  # an empty block still costs a call
        cost = max(wall_ms, 1) / weight
        per_height = weight / heights
        self.ms_per_weight = (cost if self.ms_per_weight is None
                              else _KEEP * self.ms_per_weight + (1 - _KEEP) * cost)
        self.weight_per_height = (per_height if self.weight_per_height is None
                                  else _KEEP * self.weight_per_height
                                  + (1 - _KEEP) * per_height)
        self.size = self._clamp(self._ideal(), 2 * self.size)

    def failed(self) -> None:
        self.size = max(self.minimum, self.size // 2)

    def _ideal(self) -> float:
        assert self.ms_per_weight and self.weight_per_height
        weight = self.target_seconds * 1000.0 / self.ms_per_weight
        return weight / self.weight_per_height

    def _clamp(self, ideal: float, ceiling: int) -> int:
        return max(self.minimum, min(self.maximum, ceiling, int(ideal)))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchSizer:
        return cls(**data)
