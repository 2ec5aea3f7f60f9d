"""Child runs of a parent workflow, one per item (an account, a session), as a batch or a
season runs them: started, or attached to when a run of the same id is already going
(on-demand runs are safe to join); one child's failure is one failed item of the parent's
stage, counted and said, while only the parent's own cancellation stops it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import TypedSearchAttributes
from temporalio.exceptions import ActivityError, ChildWorkflowError, WorkflowAlreadyStartedError
from temporalio.workflow import ChildWorkflowCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.runs import RunActivities
    from pipeworks.errors import failure_message
    from pipeworks.progress import StageProgress
    from workflows.base import PipelineWorkflow


async def start_or_attach(
    parent: PipelineWorkflow, run: Callable[..., Any], params: dict[str, Any], *,
    workflow_id: str, summary: str, search_attributes: TypedSearchAttributes | None,
    cancellation_type: ChildWorkflowCancellationType | None = None,
) -> tuple[dict[str, Any], str | None]:
    """The child's result and first run id; a run of that id already going is waited
    for instead (its changes are its own: the parent's undo leaves them, run id None)."""
    options: dict[str, Any] = {}
    if cancellation_type is not None:
        options["cancellation_type"] = cancellation_type
    try:
        handle = await workflow.start_child_workflow(
            run, params, id=workflow_id, static_summary=summary,
            search_attributes=search_attributes, **options)
    except WorkflowAlreadyStartedError:
        attached: dict[str, Any] = await parent.run_activity(
            RunActivities.await_workflow, workflow_id, summary=f"attach to {workflow_id}",
            start_to_close=timedelta(hours=24), heartbeat_timeout=timedelta(seconds=30))
        return attached, None
    result: dict[str, Any] = await handle
    return result, handle.first_execution_run_id


async def counted_child(
    parent: PipelineWorkflow, stage: StageProgress, label: str,
    child: Callable[[], Any],
) -> tuple[dict[str, Any], str | None] | None:
    """Runs `child()` (a `start_or_attach` call); on success counts it done in `stage`
    with its records and errors, on failure counts one failed item (None)."""
    try:
        result, run_id = await child()
    except (ChildWorkflowError, ActivityError) as err:
        # Only the parent's own cancellation stops it; a child that failed (and undid
        # itself) or was cancelled from outside is one failed item.
        task = asyncio.current_task()
        if parent.stopping or (task is not None and task.cancelling()):
            raise
        if isinstance(err, ChildWorkflowError):  # activity failures count themselves
            parent.count_failure(err)
        stage.failed += 1
        parent.note(f"{label} failed: {failure_message(err)}")
        return None
    stage.done += 1
    records = result.get("records", {})
    stage.records.add(int(records.get("fetched", 0)), int(records.get("staged", 0)),
                      int(records.get("invalid", 0)))
    parent.progress.count_errors(result.get("errors", {}))
    parent.note()
    return result, run_id
