"""The F1 pipeline's part of `pipeworks serve`: the session API (the CLI report's JSON)
and the dashboard pages (the sessions, one session's charts). The kernel mounts
`api_router` under /api/v1 and `pages_router` at /, and handles keys, roles and
sessions through the dependencies used here."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import HTMLResponse

from starters.f1.report import session_report_on
from starters.f1.web.data import session_page, sessions_list
from starters.web.deps import PageViewer, Pool, Viewer, problem, render

# session_key is an int4 in f1.sessions: outside it a lookup could only miss (or overflow).
SessionKey = Annotated[int, Path(ge=1, le=2**31 - 1, description="the session's session_key")]

api_router = APIRouter(tags=["f1"])
pages_router = APIRouter(include_in_schema=False)

_PROBLEM: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such session in f1.sessions",
          "content": {"application/problem+json": {}}}}


def _not_found(session_key: int) -> str:
    return (f"session {session_key} is not in f1.sessions: sync it first "
            f"(pipeworks f1 sync-session {session_key} --wait)")


@api_router.get(
    "/f1/sessions/{session_key}", summary="An F1 session's derived metrics",
    description="Stints with degradation, pace deltas, pit cycles, the latest quality "
                "checks and stream states: the document `pipeworks f1 report KEY --json` "
                "prints.",
    response_class=Response, responses={200: {"content": {"application/json": {}}}, **_PROBLEM})
async def session_metrics(session_key: SessionKey, viewer: Viewer, pool: Pool) -> Response:
    # One snapshot: a sync writing the session meanwhile cannot mix old and new rows.
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                        readonly=True):
        document = await session_report_on(conn, session_key)
    if document is None:
        problem(404, "Session not found", _not_found(session_key))
    # Serialised as the CLI does (starters/f1/cli.py), so both print the same text.
    return Response(content=json.dumps(document, ensure_ascii=False, default=str),
                    media_type="application/json")


@pages_router.get("/f1", response_class=HTMLResponse)
async def sessions_page(request: Request, viewer: PageViewer, pool: Pool) -> HTMLResponse:
    return render(request, "f1/sessions.html", {"sessions": await sessions_list(pool)})


@pages_router.get("/f1/sessions/{session_key}", response_class=HTMLResponse)
async def session_view(request: Request, session_key: SessionKey, viewer: PageViewer,
                       pool: Pool) -> HTMLResponse:
    data = await session_page(pool, session_key)
    if data is None:
        problem(404, "Session not found", _not_found(session_key))
    return render(request, "f1/session.html", {"data": data, "session": data["session"]})
