"""Errors as `application/problem+json` (RFC 9457) on the API, and as a page on the
dashboard."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, NoReturn

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"


class ApiProblem(Exception):
    def __init__(self, status: int, title: str, detail: str, *,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


class LoginRequired(Exception):
    """A dashboard page without a valid session: the answer is a redirect to /login."""


def problem(status: int, title: str, detail: str, **extra: Any) -> NoReturn:
    raise ApiProblem(status, title, detail, **extra)


def problem_response(request: Request, status: int, title: str, detail: str,
                     headers: dict[str, str] | None = None, **extra: Any) -> Response:
    if _wants_html(request):
        from starters.web.rendering import error_page

        return error_page(request, status, title, detail, headers)
    return problem_json(status, title, detail, request.url.path, headers, **extra)


def problem_json(status: int, title: str, detail: str, instance: str,
                 headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail,
            "instance": instance, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _wants_html(request: Request) -> bool:
    if request.url.path.startswith("/api/"):
        return False
    return "text/html" in request.headers.get("accept", "")


def install(app: FastAPI) -> None:
    async def on_problem(request: Request, err: Exception) -> Response:
        assert isinstance(err, ApiProblem)
        return problem_response(request, err.status, err.title, err.detail, err.headers,
                                **err.extra)

    async def on_http(request: Request, err: Exception) -> Response:
        assert isinstance(err, StarletteHTTPException)
        title = HTTPStatus(err.status_code).phrase
        return problem_response(request, err.status_code, title, str(err.detail),
                                dict(err.headers or {}))

    async def on_invalid(request: Request, err: Exception) -> Response:
        assert isinstance(err, RequestValidationError)
        errors = [{"location": ".".join(str(part) for part in e["loc"]), "message": e["msg"]}
                  for e in err.errors()]
        first = errors[0] if errors else {"location": "request", "message": "invalid"}
        return problem_response(request, 422, "Invalid request",
                                f"{first['location']}: {first['message']}", errors=errors)

    async def on_login(request: Request, err: Exception) -> Response:
        from starters.web.sessions import login_redirect

        return login_redirect(request)

    app.add_exception_handler(ApiProblem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(LoginRequired, on_login)
