"""A run's timeline from its Temporal history: when each activity, child workflow and
timer started and ended, with how it ended, and the signals and the run's end. It is
what happened, also for a run that ended before anyone watched, and costs no storage
of our own (histories stay small: long runs continue as new)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

MAX_EVENTS = 5000
MAX_SPANS = 400

_ENDS = {
    "ACTIVITY_TASK_COMPLETED": ("activity_task_completed_event_attributes", "completed"),
    "ACTIVITY_TASK_FAILED": ("activity_task_failed_event_attributes", "failed"),
    "ACTIVITY_TASK_TIMED_OUT": ("activity_task_timed_out_event_attributes", "timed out"),
    "ACTIVITY_TASK_CANCELED": ("activity_task_canceled_event_attributes", "cancelled"),
    "CHILD_WORKFLOW_EXECUTION_COMPLETED": (
        "child_workflow_execution_completed_event_attributes", "completed"),
    "CHILD_WORKFLOW_EXECUTION_FAILED": (
        "child_workflow_execution_failed_event_attributes", "failed"),
    "CHILD_WORKFLOW_EXECUTION_CANCELED": (
        "child_workflow_execution_canceled_event_attributes", "cancelled"),
    "CHILD_WORKFLOW_EXECUTION_TIMED_OUT": (
        "child_workflow_execution_timed_out_event_attributes", "timed out"),
    "CHILD_WORKFLOW_EXECUTION_TERMINATED": (
        "child_workflow_execution_terminated_event_attributes", "terminated"),
    "TIMER_FIRED": ("timer_fired_event_attributes", "fired"),
    "TIMER_CANCELED": ("timer_canceled_event_attributes", "cancelled"),
}
_RUN_ENDS = {"WORKFLOW_EXECUTION_COMPLETED": "completed", "WORKFLOW_EXECUTION_FAILED": "failed",
             "WORKFLOW_EXECUTION_CANCELED": "cancelled", "WORKFLOW_EXECUTION_TIMED_OUT":
             "timed out", "WORKFLOW_EXECUTION_TERMINATED": "terminated",
             "WORKFLOW_EXECUTION_CONTINUED_AS_NEW": "continued as new"}


@dataclass
class _Reader:
    client: Client
    started: datetime | None = None
    spans: dict[int, dict[str, Any]] = field(default_factory=dict)
    marks: list[dict[str, Any]] = field(default_factory=list)

    def seconds(self, event: HistoryEvent) -> float:
        at = event.event_time.ToDatetime()
        if self.started is None:
            self.started = at
        return round((at - self.started).total_seconds(), 3)

    async def summary(self, event: HistoryEvent) -> str | None:
        if not event.HasField("user_metadata") or not event.user_metadata.HasField("summary"):
            return None
        try:
            [text] = await self.client.data_converter.decode([event.user_metadata.summary])
        except Exception:  # a summary we cannot decode is no reason to fail the page
            return None
        return str(text) if text is not None else None

    async def read(self, event: HistoryEvent) -> None:
        kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
        at = self.seconds(event)
        if kind == "ACTIVITY_TASK_SCHEDULED":
            attributes = event.activity_task_scheduled_event_attributes
            name = await self.summary(event) or attributes.activity_type.name
            self._open(event, "activity", name, at)
        elif kind == "START_CHILD_WORKFLOW_EXECUTION_INITIATED":
            child = event.start_child_workflow_execution_initiated_event_attributes
            self._open(event, "child", f"{child.workflow_type.name} {child.workflow_id}", at)
        elif kind == "TIMER_STARTED":
            name = await self.summary(event) or "timer"
            self._open(event, "timer", name, at)
        elif kind in _ENDS:
            attribute, outcome = _ENDS[kind]
            attributes = getattr(event, attribute)
            opened = (attributes.started_event_id if kind.startswith("TIMER")
                      else getattr(attributes, "scheduled_event_id", 0)
                      or getattr(attributes, "initiated_event_id", 0))
            span = self.spans.get(opened)
            if span is not None:
                span["end_s"], span["outcome"] = at, outcome
        elif kind == "WORKFLOW_EXECUTION_SIGNALED":
            self.marks.append({"at_s": at, "what": "signal "
                               + event.workflow_execution_signaled_event_attributes.signal_name})
        elif kind == "WORKFLOW_EXECUTION_CANCEL_REQUESTED":
            self.marks.append({"at_s": at, "what": "cancel requested"})
        elif kind in _RUN_ENDS:
            self.marks.append({"at_s": at, "what": f"run {_RUN_ENDS[kind]}"})

    def _open(self, event: HistoryEvent, kind: str, name: str, at: float) -> None:
        if len(self.spans) < MAX_SPANS:
            self.spans[event.event_id] = {"kind": kind, "name": name, "start_s": at,
                                          "end_s": None, "outcome": "running"}


async def run_timeline(client: Client, workflow_id: str) -> dict[str, Any]:
    """The latest run's timeline (a continued run's is its own)."""
    reader = _Reader(client)
    count = 0
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        await reader.read(event)
        count += 1
        if count >= MAX_EVENTS:
            break
    return {"workflow_id": workflow_id,
            "started_at": reader.started.isoformat() + "Z" if reader.started else None,
            "spans": list(reader.spans.values()), "marks": reader.marks,
            "truncated": count >= MAX_EVENTS or len(reader.spans) >= MAX_SPANS}
