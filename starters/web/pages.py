"""The kernel's dashboard pages: runs of every pipeline, a run, its cancel form, and
health. Live parts (progress bars, a run's timeline) are scripts over the API."""

from __future__ import annotations

from typing import Annotated, Any, get_args

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from starters.web import api_runs
from starters.web.api_runs import RunStatus
from starters.web.audit import AuditedRoute
from starters.web.deps import PageOperator, PageViewer, Pool, Temporal, render
from starters.web.health import health
from starters.web.problems import ApiProblem
from starters.web.progress_source import RunNotFound, progress_of
from starters.web.state import server

router = APIRouter(include_in_schema=False)
operations = APIRouter(include_in_schema=False, route_class=AuditedRoute)


@router.get("/", response_class=HTMLResponse)
async def runs_page(request: Request, viewer: PageViewer, pool: Pool,
                    pipeline: Annotated[str | None, Query(max_length=100)] = None,
                    status: RunStatus | None = None,
                    cursor: Annotated[str | None, Query(max_length=500)] = None
                    ) -> HTMLResponse:
    page = await api_runs.list_runs(viewer, pool, request, pipeline or None, status, 50,
                                    cursor or None, live=not cursor)
    return render(request, "runs.html", {
        "runs": page.items, "next_cursor": page.next_cursor,
        "pipelines": [p.name for p in server(request).pipelines],
        "filters": {"pipeline": pipeline or "", "status": status or ""},
        "statuses": get_args(RunStatus)})


@router.get("/runs/{workflow_id}", response_class=HTMLResponse)
async def run_page(request: Request, workflow_id: Annotated[str, Path(max_length=1000)],
                   viewer: PageViewer, pool: Pool, temporal: Temporal) -> HTMLResponse:
    try:
        answer = await progress_of(temporal, pool, workflow_id)
    except RunNotFound:
        raise ApiProblem(404, "Run not found", f"no run with workflow id {workflow_id!r}"
                         ) from None
    document: dict[str, Any] | None = answer.document
    links = [link for parts in server(request).parts.values()
             for link in parts.run_links(workflow_id)]
    return render(request, "run.html", {"links": links,
        "workflow_id": workflow_id, "progress": document, "unavailable": answer.unavailable,
        "cancelled": request.query_params.get("cancel") == "sent"})


@operations.post("/runs/{workflow_id}/cancel")
async def cancel_from_page(request: Request, workflow_id: Annotated[str, Path(max_length=1000)],
                           operator: PageOperator,
                           reason: Annotated[str, Form(min_length=1, max_length=1000)] =
                           "cancelled from the dashboard") -> Response:
    await api_runs.cancel(request, workflow_id, f"{reason} (by {operator.name})")
    return RedirectResponse(f"/runs/{workflow_id}?cancel=sent", status_code=303)


@router.get("/health", response_class=HTMLResponse)
async def health_page(request: Request, viewer: PageViewer) -> HTMLResponse:
    return render(request, "health.html", {"health": await health(server(request))})
