"""`pipeline.api_audit`: every request that starts or cancels a run, whatever its
outcome (refused ones too: 401, 403, 422, 429), written after the answer is known."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from pipeworks.logging import get_logger
from starters.web.auth import CSRF_FIELD
from starters.web.middleware import BodyTooLarge
from starters.web.problems import ApiProblem, LoginRequired
from starters.web.state import server

log = get_logger("pipeworks.web.audit")
MAX_REQUEST_CHARS = 16_384

_INSERT = """
    INSERT INTO pipeline.api_audit (key_name, role, action, pipeline, workflow_id, run_id,
                                    request, status, outcome, detail, client)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
"""


def note(request: Request, **fields: Any) -> None:
    """What the handler learnt (run id, outcome), for the audit row."""
    request.state.audit = {**getattr(request.state, "audit", {}), **fields}


async def _request_body(request: Request) -> Any:
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("application/json"):
            raw = (await request.body()).decode(errors="replace")
            try:
                return json.loads(raw)
            except ValueError:
                return {"unparsed": raw[:MAX_REQUEST_CHARS]}
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/")):
            form = await request.form()
            return {k: str(v)[:1000] for k, v in form.items() if k != CSRF_FIELD}
    except Exception:  # a body the client never finished: record none
        return None
    return None


async def write(request: Request, action: str, status: int, detail: str | None) -> None:
    noted: dict[str, Any] = getattr(request.state, "audit", {})
    principal = getattr(request.state, "principal", None)
    # Without a valid key, what was sent is not kept: nobody may fill the table.
    body = await _request_body(request) if principal is not None else None
    text = json.dumps(body) if body is not None else None
    if text is not None and len(text) > MAX_REQUEST_CHARS:
        text = json.dumps({"truncated": text[:MAX_REQUEST_CHARS]})
    outcome = noted.get("outcome") or ("refused" if status >= 400 else "done")
    try:
        await server(request).pool.execute(
            _INSERT, principal.name if principal else None,
            principal.role if principal else None, action,
            noted.get("pipeline", request.path_params.get("pipeline")),
            noted.get("workflow_id", request.path_params.get("workflow_id")),
            noted.get("run_id"), text, status, outcome, detail,
            request.client.host if request.client else None)
    except Exception as err:  # the answer is given; losing its record is logged loudly
        log.error("cannot write the audit row", action=action, error=str(err))


class AuditedRoute(APIRoute):
    """A route whose every request leaves an audit row; its action is `start` or
    `cancel`, from its path."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        action = "cancel" if self.path.endswith("/cancel") else "start"

        async def audited(request: Request) -> Response:
            try:
                response = await handle(request)
            except ApiProblem as err:
                await write(request, action, err.status, err.detail)
                raise
            except RequestValidationError as err:
                await write(request, action, 422, str(err.errors()[:3])[:1000])
                raise
            except HTTPException as err:
                await write(request, action, err.status_code, str(err.detail))
                raise
            except LoginRequired:
                await write(request, action, 401, "no dashboard session")
                raise
            except Exception as err:  # a bug or an outage: the try is recorded all the same
                status = 413 if isinstance(err, BodyTooLarge) else 500
                await write(request, action, status, f"{type(err).__name__}: {err}"[:1000])
                raise
            await write(request, action, response.status_code,
                        getattr(request.state, "audit", {}).get("detail"))
            return response

        return audited
