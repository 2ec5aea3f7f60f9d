"""Where a workflow run spent its time, from its Temporal history alone.

Every activity has three timestamps: scheduled (the workflow asked for it), started (a
worker picked it up) and completed. Per competition, pipeworks runs four activities in
a row (fetch teams, stage teams, fetch games, stage games); the time of such a chain
that is not inside an activity is orchestration: a workflow task to schedule the next
activity, then matching it to a worker.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from typing import Any

from temporalio.api.history.v1 import History, HistoryEvent
from temporalio.client import WorkflowHistory

SPORTS_CHAIN = ("sports_fetch_stream", "sports_stage_stream", "sports_sync_streams")


def _seconds(event: HistoryEvent) -> float:
    return event.event_time.seconds + event.event_time.nanos / 1e9


def _input(event: HistoryEvent) -> dict[str, Any]:
    """The activity's (first) argument, when it is a JSON object."""
    payloads = event.activity_task_scheduled_event_attributes.input.payloads
    if not payloads:
        return {}
    try:
        data = json.loads(payloads[0].data)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def size(history: WorkflowHistory) -> dict[str, int]:
    return {"events": len(history.events),
            "bytes": History(events=history.events).ByteSize(),
            "json_bytes": len(history.to_json())}


def analyse(history: WorkflowHistory) -> dict[str, Any]:
    events = history.events
    scheduled: dict[int, tuple[str, float, str | None]] = {}
    started: dict[int, float] = {}
    completed: dict[int, float] = {}
    wft_scheduled: dict[int, float] = {}
    wft_total = 0.0
    wft_count = 0
    for event in events:
        kind = event.WhichOneof("attributes")
        at = _seconds(event)
        if kind == "activity_task_scheduled_event_attributes":
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            arg = _input(event)
            entity, scope = arg.get("entity"), arg.get("scope")
            streams = arg.get("streams")
            if isinstance(streams, list):  # sports_sync_streams: e.g. "teams+games"
                entity = "+".join(str(s.get("entity")) for s in streams if isinstance(s, dict))
            if isinstance(entity, str):
                name = f"{name}:{entity}"
            scheduled[event.event_id] = (name, at, scope if isinstance(scope, str) else None)
        elif kind == "activity_task_started_event_attributes":
            started[event.activity_task_started_event_attributes.scheduled_event_id] = at
        elif kind == "activity_task_completed_event_attributes":
            completed[event.activity_task_completed_event_attributes.scheduled_event_id] = at
        elif kind == "workflow_task_scheduled_event_attributes":
            wft_scheduled[event.event_id] = at
        elif kind == "workflow_task_completed_event_attributes":
            first = event.workflow_task_completed_event_attributes.scheduled_event_id
            if first in wft_scheduled:
                wft_total += at - wft_scheduled[first]
                wft_count += 1

    by_type: dict[str, dict[str, float]] = defaultdict(
        lambda: {"count": 0, "run_s": 0.0, "queue_s": 0.0})
    chains: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for sid, (name, at, scope) in scheduled.items():
        if sid not in started or sid not in completed:
            continue
        row = by_type[name]
        row["count"] += 1
        row["run_s"] += completed[sid] - started[sid]
        row["queue_s"] += started[sid] - at
        if name.split(":")[0] in SPORTS_CHAIN and scope is not None and not scope.startswith(
                ("association:", "club:")):
            chains[scope].append((at, started[sid], completed[sid]))

    chain_span = chain_run = chain_gap = chain_queue = 0.0
    steps = 0
    for acts in chains.values():
        acts.sort()
        chain_span += acts[-1][2] - acts[0][0]
        chain_run += sum(done - start for _, start, done in acts)
        chain_queue += sum(start - sched for sched, start, _ in acts)
        chain_gap += sum(nxt[0] - prev[2] for prev, nxt in itertools.pairwise(acts))
        steps += len(acts)
    total = _seconds(events[-1]) - _seconds(events[0]) if events else 0.0
    first_chain = min((a[0][0] for a in chains.values()), default=None)
    last_chain = max((a[-1][2] for a in chains.values()), default=None)
    n = max(len(chains), 1)
    return {
        "history_span_s": total,
        "before_competitions_s": (first_chain - _seconds(events[0])) if first_chain else None,
        "after_competitions_s": (_seconds(events[-1]) - last_chain) if last_chain else None,
        "activities": {k: dict(v) for k, v in sorted(by_type.items())},
        "workflow_tasks": {"count": wft_count, "total_s": wft_total,
                           "mean_ms": 1000 * wft_total / max(wft_count, 1)},
        "competition_chains": {
            "count": len(chains), "activities": steps,
            "mean_span_s": chain_span / n,
            "mean_in_activities_s": chain_run / n,
            # From one activity's completion to the next one's scheduling: a workflow task.
            "mean_between_activities_s": chain_gap / n,
            # From scheduled to picked up by the worker.
            "mean_queued_s": chain_queue / n,
            "orchestration_share": (chain_gap + chain_queue) / chain_span if chain_span else 0,
        },
    }
