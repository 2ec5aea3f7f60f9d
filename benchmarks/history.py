"""Where a workflow run spent its time, from its Temporal history alone.

With the run's children (parts of a large organisation), if any.

Every activity has three timestamps: scheduled (the workflow asked for it), started (a
worker picked it up) and completed. Per competition, pipeworks runs one activity
(`sports_sync_streams`: teams and games), or, in runs from before the `sync-streams`
patch, four in a row (fetch teams, stage teams, fetch games, stage games); the time of
such a chain that is not inside an activity is orchestration: a workflow task to
schedule the next activity, then matching it to a worker. Between competitions, the
"handoff" is the time from one competition's end to the next one's scheduling.
"""

from __future__ import annotations

import bisect
import itertools
import json
from collections import defaultdict
from typing import Any

from temporalio.api.history.v1 import History, HistoryEvent
from temporalio.client import Client, WorkflowHandle, WorkflowHistory

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


async def run_histories(client: Client, handle: WorkflowHandle[Any, Any]
                        ) -> list[WorkflowHistory]:
    """The run's history, then those of the child workflows it started (its parts)."""
    parent = await handle.fetch_history()
    histories = [parent]
    for event in parent.events:
        if event.HasField("child_workflow_execution_started_event_attributes"):
            child = event.child_workflow_execution_started_event_attributes.workflow_execution
            histories.append(await client.get_workflow_handle(
                child.workflow_id, run_id=child.run_id).fetch_history())
    return histories


def size(histories: list[WorkflowHistory]) -> dict[str, Any]:
    """Events and bytes: of the run's own history, and of the largest and of all its
    workflows (the run and its children)."""
    def one(history: WorkflowHistory) -> dict[str, int]:
        return {"events": len(history.events),
                "bytes": History(events=history.events).ByteSize(),
                "json_bytes": len(history.to_json())}
    sizes = [one(h) for h in histories]
    return {**sizes[0], "workflows": len(sizes),
            "max_events": max(s["events"] for s in sizes),
            "max_bytes": max(s["bytes"] for s in sizes),
            "total_events": sum(s["events"] for s in sizes),
            "total_bytes": sum(s["bytes"] for s in sizes),
            "child_events": [s["events"] for s in sizes[1:]]}


def activities_by_worker(histories: list[WorkflowHistory]) -> dict[str, dict[str, int]]:
    """Activities started per worker identity (`<pid>@<host>`), by activity type."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for history in histories:
        names: dict[int, str] = {}
        for event in history.events:
            if event.HasField("activity_task_scheduled_event_attributes"):
                names[event.event_id] = (
                    event.activity_task_scheduled_event_attributes.activity_type.name)
            elif event.HasField("activity_task_started_event_attributes"):
                started = event.activity_task_started_event_attributes
                counts[started.identity][names.get(started.scheduled_event_id, "?")] += 1
    return {identity: dict(c) for identity, c in counts.items()}


def analyse(histories: list[WorkflowHistory]) -> dict[str, Any]:
    """Where the run's time went; over the run and its children, if any."""
    scheduled: dict[tuple[int, int], tuple[str, float, str | None]] = {}
    started: dict[tuple[int, int], float] = {}
    completed: dict[tuple[int, int], float] = {}
    wft_total = 0.0
    wft_count = 0
    first_event = last_event = None
    for h, history in enumerate(histories):
        wft_scheduled: dict[int, float] = {}
        for event in history.events:
            kind = event.WhichOneof("attributes")
            at = _seconds(event)
            first_event = at if first_event is None else min(first_event, at)
            last_event = at if last_event is None else max(last_event, at)
            if kind == "activity_task_scheduled_event_attributes":
                name = event.activity_task_scheduled_event_attributes.activity_type.name
                arg = _input(event)
                entity, scope = arg.get("entity"), arg.get("scope")
                streams = arg.get("streams")
                if isinstance(streams, list):  # sports_sync_streams: e.g. "teams+games"
                    entity = "+".join(str(s.get("entity")) for s in streams
                                      if isinstance(s, dict))
                if isinstance(entity, str):
                    name = f"{name}:{entity}"
                scheduled[(h, event.event_id)] = (
                    name, at, scope if isinstance(scope, str) else None)
            elif kind == "activity_task_started_event_attributes":
                sid = event.activity_task_started_event_attributes.scheduled_event_id
                started[(h, sid)] = at
            elif kind == "activity_task_completed_event_attributes":
                sid = event.activity_task_completed_event_attributes.scheduled_event_id
                completed[(h, sid)] = at
            elif kind == "workflow_task_scheduled_event_attributes":
                wft_scheduled[event.event_id] = at
            elif kind == "workflow_task_completed_event_attributes":
                first = event.workflow_task_completed_event_attributes.scheduled_event_id
                if first in wft_scheduled:
                    wft_total += at - wft_scheduled[first]
                    wft_count += 1

    by_type: dict[str, dict[str, float]] = defaultdict(
        lambda: {"count": 0, "run_s": 0.0, "queue_s": 0.0})
    chains: dict[tuple[int, str], list[tuple[float, float, float]]] = defaultdict(list)
    for key, (name, at, scope) in scheduled.items():
        if key not in started or key not in completed:
            continue
        row = by_type[name]
        row["count"] += 1
        row["run_s"] += completed[key] - started[key]
        row["queue_s"] += started[key] - at
        if name.split(":")[0] in SPORTS_CHAIN and scope is not None and not scope.startswith(
                ("association:", "club:")):
            chains[(key[0], scope)].append((at, started[key], completed[key]))

    chain_span = chain_run = chain_gap = chain_queue = 0.0
    steps = 0
    for acts in chains.values():
        acts.sort()
        chain_span += acts[-1][2] - acts[0][0]
        chain_run += sum(done - start for _, start, done in acts)
        chain_queue += sum(start - sched for sched, start, _ in acts)
        chain_gap += sum(nxt[0] - prev[2] for prev, nxt in itertools.pairwise(acts))
        steps += len(acts)
    # From a competition's last activity completing to the next competition's first
    # being scheduled (in the same workflow): the workflow task that frees the slot.
    handoffs: list[float] = []
    for h in range(len(histories)):
        starts = sorted(a[0][0] for (hh, _), a in chains.items() if hh == h)
        for (hh, _), acts in chains.items():
            if hh != h:
                continue
            done = acts[-1][2]
            later = bisect.bisect_left(starts, done)
            if later < len(starts):
                handoffs.append(starts[later] - done)
    total = (last_event - first_event) if first_event is not None and last_event else 0.0
    first_chain = min((a[0][0] for a in chains.values()), default=None)
    last_chain = max((a[-1][2] for a in chains.values()), default=None)
    n = max(len(chains), 1)
    return {
        "history_span_s": total,
        "before_competitions_s": (first_chain - first_event) if (
            first_chain is not None and first_event is not None) else None,
        "after_competitions_s": (last_event - last_chain) if (
            last_chain is not None and last_event is not None) else None,
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
            "mean_handoff_s": sum(handoffs) / len(handoffs) if handoffs else None,
        },
    }
