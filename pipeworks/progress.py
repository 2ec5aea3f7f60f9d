"""The `progress` document every workflow answers (see contracts/interfaces.md).

Pure state with no I/O or clock of its own: workflows pass `workflow.now()` in,
so the document is deterministic and replays identically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pipeworks.errors import ErrorCategory

RunStatus = Literal[
    "pending", "running", "compensating", "completed", "completed_with_errors", "failed",
    "cancelled",
]
StageStatus = Literal["pending", "running", "done", "failed", "skipped"]
FINAL_STATUSES: frozenset[str] = frozenset(
    {"completed", "completed_with_errors", "failed", "cancelled"}
)


@dataclass
class RecordCounts:
    fetched: int = 0
    staged: int = 0
    invalid: int = 0

    def add(self, fetched: int = 0, staged: int = 0, invalid: int = 0) -> None:
        self.fetched += fetched
        self.staged += staged
        self.invalid += invalid

    def as_dict(self) -> dict[str, int]:
        return {"fetched": self.fetched, "staged": self.staged, "invalid": self.invalid}


@dataclass
class StageProgress:
    name: str
    status: StageStatus = "pending"
    total: int | None = None
    done: int = 0
    failed: int = 0
    records: RecordCounts = field(default_factory=RecordCounts)

    @property
    def percent(self) -> float:
        if self.status in ("done", "skipped"):
            return 100.0
        if not self.total:
            return 0.0
        return round(min(100.0, 100.0 * (self.done + self.failed) / self.total), 2)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "percent": self.percent,
            "records": self.records.as_dict(),
        }


@dataclass
class RunProgress:
    workflow_id: str
    pipeline: str
    stages: list[StageProgress]
    started_at: datetime
    updated_at: datetime
    status: RunStatus = "pending"
    rolled_back: bool = False
    message: str | None = None
    errors: dict[str, int] = field(default_factory=lambda: {c.value: 0 for c in ErrorCategory})

    @classmethod
    def new(cls, workflow_id: str, pipeline: str, stage_names: list[str], now: datetime
            ) -> RunProgress:
        return cls(workflow_id, pipeline, [StageProgress(n) for n in stage_names], now, now)

    def stage(self, name: str) -> StageProgress:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)

    def touch(self, now: datetime, message: str | None = None) -> None:
        self.updated_at = now
        if message is not None:
            self.message = message

    def count_errors(self, counts: dict[str, int]) -> None:
        for category, n in counts.items():
            if category in self.errors:
                self.errors[category] += int(n)

    def count_error(self, category: ErrorCategory) -> None:
        self.errors[category.value] += 1

    @property
    def records(self) -> RecordCounts:
        total = RecordCounts()
        for stage in self.stages:
            total.add(stage.records.fetched, stage.records.staged, stage.records.invalid)
        return total

    @property
    def percent(self) -> float:
        if self.status in ("completed", "completed_with_errors"):
            return 100.0
        if not self.stages:
            return 0.0
        return round(sum(s.percent for s in self.stages) / len(self.stages), 2)

    def as_dict(self) -> dict[str, Any]:
        return {
            "workflow_id": self.workflow_id,
            "pipeline": self.pipeline,
            "status": self.status,
            "rolled_back": self.rolled_back,
            "percent": self.percent,
            "stages": [s.as_dict() for s in self.stages],
            "records": self.records.as_dict(),
            "errors": dict(self.errors),
            "started_at": _rfc3339(self.started_at),
            "updated_at": _rfc3339(self.updated_at),
            "message": self.message,
        }


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
