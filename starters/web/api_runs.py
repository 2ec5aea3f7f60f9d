"""The kernel's API routes (interfaces.md, "HTTP API and dashboard"): pipelines, runs
(newest first from `pipeline.runs`, by cursor), a run's progress, its events, start
and cancel."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse, ServerSentEvent
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from pipeworks import search_attributes
from pipeworks.registry import Pipeline
from starters import client as runs
from starters.web import timeline
from starters.web.audit import AuditedRoute, note
from starters.web.cursor import decode_cursor, encode_cursor
from starters.web.deps import Operator, Pool, Temporal, Viewer
from starters.web.problems import problem
from starters.web.progress_source import RunNotFound, progress_of
from starters.web.starting import chosen_input, input_models
from starters.web.state import server

router = APIRouter()
operations = APIRouter(route_class=AuditedRoute)

RunStatus = Literal["running", "completed", "completed_with_errors", "failed", "cancelled",
                    "rolled_back"]
WorkflowId = Annotated[str, Path(min_length=1, max_length=1000)]

_RUNS = """
    SELECT workflow_id, run_id, pipeline, status, started_at, finished_at, params,
           stats->'percent' AS percent, stats->'message' AS message
    FROM pipeline.runs
    WHERE ($1::text IS NULL OR pipeline = $1) AND ($2::text IS NULL OR status = $2)
      AND ($3::timestamptz IS NULL OR (started_at, run_id) < ($3, $4))
    ORDER BY started_at DESC, run_id DESC
    LIMIT $5
"""


_IS_RUN = "SELECT 1 FROM pipeline.runs WHERE workflow_id = $1 LIMIT 1"


class Page(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null "
                                                "at the end")


class CancelRequest(BaseModel):
    reason: str = Field(default="cancelled over the API", min_length=1, max_length=1000)


def _pipeline(request: Request, name: str) -> Pipeline:
    for pipeline in server(request).pipelines:
        if pipeline.name == name:
            return pipeline
    problem(404, "Pipeline not found", f"no pipeline named {name!r} (installed: "
            + ", ".join(p.name for p in server(request).pipelines) + ")")


@router.get("/pipelines", summary="Installed pipelines", tags=["runs"])
async def list_pipelines(request: Request, viewer: Viewer) -> list[dict[str, Any]]:
    state = server(request)
    if state.pipelines_document is None:  # the same for the server's life: built once
        state.pipelines_document = [
            {"name": p.name, "description": p.description, "workflows": p.workflow_names,
             "startable": {m.WORKFLOW: m.model_json_schema() for m in input_models(p)},
             "upstream_settings": list(p.upstream_settings)} for p in state.pipelines]
    return state.pipelines_document


@router.get("/runs", summary="Runs, newest first", tags=["runs"], response_model=Page)
async def list_runs(
    viewer: Viewer, pool: Pool, request: Request,
    pipeline: Annotated[str | None, Query(max_length=100)] = None,
    status: RunStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    live: Annotated[bool, Query(description="add the live `progress` of the page's first "
                                            f"{LIVE_RUNS} running runs (a query each)")
                    ] = False,
) -> Page:
    if pipeline is not None:
        _pipeline(request, pipeline)
    after: list[Any] = [None, None]
    if cursor:
        after = decode_cursor(cursor, (datetime, str))
    rows = await pool.fetch(_RUNS, pipeline, status, after[0], after[1], limit + 1)
    # The pool decodes json and jsonb (pipeworks/db.py).
    items = [dict(r) for r in rows[:limit]]
    if live:
        await _add_live_progress(server(request), items)
    last = rows[limit - 1] if len(rows) > limit else None
    return Page(items=items, next_cursor=encode_cursor([last["started_at"], last["run_id"]])
                if last is not None else None)


LIVE_RUNS = 20
LIVE_SECONDS = 2.0


async def _add_live_progress(state: Any, items: list[dict[str, Any]]) -> None:
    """The dashboard's bars: one request for the list and its running runs' progress,
    asked concurrently; a run that does not answer in time keeps `progress` null."""
    running = [item for item in items if item["status"] == "running"][:LIVE_RUNS]

    async def ask(item: dict[str, Any]) -> None:
        try:
            answer = await asyncio.wait_for(
                progress_of(state.temporal, state.pool, item["workflow_id"]), LIVE_SECONDS)
        except Exception:  # a slow or absent worker: the row keeps its recorded state
            return
        document = answer.document
        if document is not None:
            item["progress"] = {key: document.get(key) for key in
                                ("status", "percent", "message", "updated_at")}

    for item in items:
        item["progress"] = None
    await asyncio.gather(*(ask(item) for item in running))


async def _progress(client: Client, pool: Any, workflow_id: str) -> dict[str, Any]:
    try:
        answer = await progress_of(client, pool, workflow_id)
    except RunNotFound:
        problem(404, "Run not found", f"no run with workflow id {workflow_id!r}")
    if answer.document is None:
        problem(503, "Run not answering", f"{workflow_id}: {answer.unavailable}")
    return answer.document


@router.get("/runs/{workflow_id}", summary="A run's progress document", tags=["runs"])
async def run_progress(workflow_id: WorkflowId, viewer: Viewer, pool: Pool,
                       temporal: Temporal) -> dict[str, Any]:
    return await _progress(temporal, pool, workflow_id)


@router.get("/runs/{workflow_id}/timeline", tags=["runs"],
            summary="The run's timeline from its Temporal history: activities, child "
                    "workflows and timers as spans (seconds since the run started), "
                    "signals and the run's end as marks")
async def run_timeline(workflow_id: WorkflowId, viewer: Viewer, temporal: Temporal
                       ) -> dict[str, Any]:
    try:
        return await timeline.run_timeline(temporal, workflow_id)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            problem(404, "Run not found", f"Temporal has no run with workflow id "
                                          f"{workflow_id!r} (or no longer keeps it)")
        problem(502, "Temporal did not answer", err.message)


@router.get("/runs/{workflow_id}/events", tags=["runs"],
            summary="Server-sent events: `progress` whenever the document changes, "
                    "`unavailable` while no worker answers, `end` after the last")
async def run_events(request: Request, workflow_id: WorkflowId, viewer: Viewer
                     ) -> EventSourceResponse:
    try:
        events = await server(request).hub.subscribe(workflow_id)
    except RunNotFound:
        problem(404, "Run not found", f"no run with workflow id {workflow_id!r}")

    async def stream() -> Any:
        number = 0
        async for name, data in events:
            number += 1
            payload = json.dumps(data) if name == "progress" else json.dumps({"reason": data})
            yield ServerSentEvent(data=payload, event=name, id=str(number))
        # EventSource reconnects when a stream ends; `end` tells it not to.
        yield ServerSentEvent(data="{}", event="end")

    return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})


def run_id_of(started: runs.Started) -> str | None:
    # A handle from a start knows its run as the result run; an attached one by run id.
    return started.handle.run_id or started.handle.result_run_id


async def start(request: Request, pipeline_name: str, body: dict[str, Any],
                workflow: str | None) -> tuple[runs.Started, str]:
    state = server(request)
    pipeline = _pipeline(request, pipeline_name)
    run_input = chosen_input(pipeline, state.settings, body, workflow)
    note(request, pipeline=pipeline.name, workflow_id=run_input.workflow_id)
    try:
        started = await runs.start_run(state.temporal, state.settings, run_input)
    except runs.StarterError as err:
        problem(502, "Temporal refused the start", str(err))
    outcome = "attached" if started.attached else "started"
    note(request, run_id=run_id_of(started), outcome=outcome)
    return started, run_input.WORKFLOW


@operations.post(
    "/pipelines/{pipeline}/runs", tags=["runs"],
    summary="Start a run, or attach to the running one of the same id (201 new, 200 "
            "attached). The body is the workflow's input; `workflow` picks the workflow "
            "when the body fits several.",
    status_code=201, responses={200: {"description": "attached to the running run"},
                                201: {"description": "started"}})
async def start_run(
    request: Request, pipeline: Annotated[str, Path(max_length=100)], operator: Operator,
    body: Annotated[dict[str, Any], Body(examples=[{"account_id": 42}])],
    workflow: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    started, workflow_type = await start(request, pipeline, body, workflow)
    workflow_id = started.handle.id
    document = {"workflow_id": workflow_id, "run_id": run_id_of(started),
                "workflow": workflow_type, "attached": started.attached,
                "progress": f"/api/v1/runs/{workflow_id}"}
    return JSONResponse(document, status_code=200 if started.attached else 201,
                        headers={"Location": f"/api/v1/runs/{workflow_id}"})


async def cancel(request: Request, workflow_id: str, reason: str) -> str | None:
    """Signals `cancel` to the open run; its run id. 404 unknown, 409 already ended."""
    state = server(request)
    note(request, workflow_id=workflow_id)
    handle = state.temporal.get_workflow_handle(workflow_id)
    try:
        described = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            problem(404, "Run not found", f"Temporal has no run with workflow id "
                                          f"{workflow_id!r} (or no longer keeps it)")
        problem(502, "Temporal did not answer", err.message)
    pipeline = described.typed_search_attributes.get(search_attributes.PIPELINE)
    note(request, run_id=described.run_id, pipeline=pipeline)
    # Only a pipeline's run (its search attribute, or its row when attributes are not
    # registered): other workflows of the namespace are not ours to signal.
    if pipeline is None and await state.pool.fetchval(_IS_RUN, workflow_id) is None:
        problem(404, "Run not found", f"{workflow_id!r} is not a pipeline's run")
    if described.close_time is not None:
        problem(409, "Run already ended", f"{workflow_id} ended "
                f"{described.status.name.lower() if described.status else 'already'}")
    try:
        await runs.send_cancel(state.temporal, workflow_id, reason)
    except runs.StarterError as err:
        problem(409, "Cannot cancel", str(err))
    note(request, outcome="cancel_sent")
    return described.run_id


@operations.post("/runs/{workflow_id}/cancel", tags=["runs"], status_code=202,
                 summary="Signal `cancel`: the run stops, undoes its changes, ends cancelled")
async def cancel_run(request: Request, workflow_id: WorkflowId, operator: Operator,
                     body: CancelRequest | None = None) -> dict[str, Any]:
    reason = (body or CancelRequest()).reason
    run_id = await cancel(request, workflow_id, reason)
    return {"workflow_id": workflow_id, "run_id": run_id, "reason": reason,
            "progress": f"/api/v1/runs/{workflow_id}"}
