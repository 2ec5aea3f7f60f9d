"""The `progress` document every workflow answers (see contracts/interfaces.md).

Pure state with no I/O or clock of its own: workflows pass `workflow.now()` in,
so the document is deterministic and replays identically.
"""

from __future__ import annotations

from collections.abc import Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

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

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> RecordCounts:
        return cls(_int(document, "fetched"), _int(document, "staged"),
                   _int(document, "invalid"))


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

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> StageProgress:
        total = document["total"]
        if total is not None and (isinstance(total, bool) or not isinstance(total, int)):
            raise ValueError(f"stage total must be an integer or null, not {total!r}")
        stage = cls(str(document["name"]), _literal(document, "status", StageStatus), total,
                    _int(document, "done"), _int(document, "failed"),
                    RecordCounts.from_dict(document["records"]))
        # `percent` is derived: a different one means the document was not made by
        # `as_dict` (or was edited), and rebuilding it would quietly change it.
        _same(document, "percent", stage.percent)
        return stage


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
    # Sections a workflow adds to the document beyond the contract's (e.g. "breakers");
    # `as_dict` lists them after the contract's keys and they never replace one.
    extra: dict[str, Any] = field(default_factory=dict)

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

    def publish(self, section: str, value: Any) -> None:
        """Adds (or replaces) an extra section of the document; it must be JSON-like
        (it travels in query answers and continue-as-new inputs)."""
        if section in CONTRACT_KEYS:
            raise ValueError(f"{section!r} is a key of the progress contract, not an extra")
        self.extra[section] = value

    def as_dict(self) -> dict[str, Any]:
        document = self._contract_dict()
        if self.extra:
            # Copies, so that changing a returned document never changes the run's.
            document.update((k, deepcopy(v)) for k, v in self.extra.items()
                            if k not in CONTRACT_KEYS)
        return document

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> RunProgress:
        """Rebuilds a run's progress from `as_dict()` output (e.g. carried across
        continue-as-new): `from_dict(p.as_dict()).as_dict() == p.as_dict()`."""
        missing = [key for key in CONTRACT_KEYS if key not in document]
        if missing:
            raise ValueError(f"not a progress document: no {', '.join(missing)}")
        errors = document["errors"]
        if not isinstance(errors, Mapping):
            raise ValueError(f"progress errors must be an object, not {errors!r}")
        message = document["message"]
        progress = cls(
            workflow_id=str(document["workflow_id"]), pipeline=str(document["pipeline"]),
            stages=[StageProgress.from_dict(s) for s in document["stages"]],
            started_at=_parse_rfc3339(document["started_at"]),
            updated_at=_parse_rfc3339(document["updated_at"]),
            status=_literal(document, "status", RunStatus),
            rolled_back=_bool(document, "rolled_back"),
            message=None if message is None else str(message),
            errors={str(k): _int(errors, k) for k in errors},
            extra={k: deepcopy(v) for k, v in document.items() if k not in CONTRACT_KEYS},
        )
        _same(document, "percent", progress.percent)
        _same(document, "records", progress.records.as_dict())
        return progress

    def _contract_dict(self) -> dict[str, Any]:
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


# The keys contracts/interfaces.md defines (order as `as_dict` writes them).
CONTRACT_KEYS: tuple[str, ...] = (
    "workflow_id", "pipeline", "status", "rolled_back", "percent", "stages", "records",
    "errors", "started_at", "updated_at", "message",
)


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _parse_rfc3339(text: Any) -> datetime:
    """The inverse of `_rfc3339` (Python 3.11's `fromisoformat` reads the `Z`)."""
    if not isinstance(text, str):
        raise ValueError(f"expected an RFC 3339 timestamp, not {text!r}")
    return datetime.fromisoformat(text)


def _int(document: Mapping[str, Any], key: str) -> int:
    value = document[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be an integer, not {value!r}")
    return value


def _bool(document: Mapping[str, Any], key: str) -> bool:
    value = document[key]
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, not {value!r}")
    return value


def _literal(document: Mapping[str, Any], key: str, kind: Any) -> Any:
    value = document[key]
    if value not in get_args(kind):
        raise ValueError(f"{key} must be one of {', '.join(get_args(kind))}, not {value!r}")
    return value


def _same(document: Mapping[str, Any], key: str, derived: Any) -> None:
    if document[key] != derived:
        raise ValueError(f"{key} {document[key]!r} does not match the rest of the document "
                         f"({derived!r}): not an `as_dict()` output")


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`1 batch`, `2 batches`: for run messages."""
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"
