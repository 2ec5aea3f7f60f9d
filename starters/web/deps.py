"""FastAPI dependencies every route uses, the kernel's and the pipelines': who asks
(401, 403, 429), the pool, the Temporal client, rendering, problems and cursors."""

from __future__ import annotations

import math
from typing import Annotated, NoReturn

import asyncpg
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from temporalio.client import Client

from pipeworks.web_settings import Role
from starters.web.auth import Principal, csrf_ok, principal_of
from starters.web.cursor import decode_cursor, encode_cursor
from starters.web.problems import ApiProblem, LoginRequired, problem
from starters.web.rendering import render
from starters.web.state import server

bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                    description="A key of PIPEWORKS_API_KEYS (name:role:key)")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def authorize(request: Request, credentials: HTTPAuthorizationCredentials | None,
                    role: Role, *, page: bool) -> Principal:
    state = server(request)
    presented, principal = principal_of(request, state.keys,
                                        credentials.credentials if credentials else None)
    if principal is None:
        if presented:  # a wrong key or session: guesses are limited per client address
            await refuse_if_limited(request, "unknown key")
        if page:
            raise LoginRequired
        reason = ("no API key: send Authorization: Bearer <key>" if not presented
                  else "the API key is not one of PIPEWORKS_API_KEYS")
        raise ApiProblem(401, "Unauthorized", reason,
                         headers={"WWW-Authenticate": 'Bearer realm="pipeworks"'})
    request.state.principal = principal
    if not principal.can(role):
        problem(403, "Forbidden", f"this needs the {role} role; key {principal.name!r} is "
                                  f"{principal.role}")
    if not await csrf_ok(request, principal):
        problem(403, "Forbidden", "missing or wrong CSRF token (reload the page)")
    wait = await state.rate_limit(principal.name).try_acquire()
    if wait is not None:
        too_many(f"key {principal.name!r} is over its rate limit", wait)
    return principal


# Wrong keys, wrong sessions and log-in attempts, per client address.
GUESSES_PER_SECOND = 1.0
GUESS_BURST = 20


async def refuse_if_limited(request: Request, what: str) -> None:
    client = request.client.host if request.client else "unknown"
    wait = await server(request).rate_limit(f"guess@{client}", GUESSES_PER_SECOND,
                                            GUESS_BURST).try_acquire()
    if wait is not None:
        too_many(f"too many attempts with an {what} from {client}", wait)


def too_many(why: str, wait: float) -> NoReturn:
    seconds = max(1, math.ceil(wait))
    raise ApiProblem(429, "Too Many Requests", f"{why}; retry after {seconds} s",
                     headers={"Retry-After": str(seconds)})


async def _viewer(request: Request, credentials: Bearer) -> Principal:
    return await authorize(request, credentials, "viewer", page=False)


async def _operator(request: Request, credentials: Bearer) -> Principal:
    return await authorize(request, credentials, "operator", page=False)


async def _page_viewer(request: Request) -> Principal:
    return await authorize(request, None, "viewer", page=True)


async def _page_operator(request: Request) -> Principal:
    return await authorize(request, None, "operator", page=True)


def _pool(request: Request) -> asyncpg.Pool:
    return server(request).pool


def _temporal(request: Request) -> Client:
    return server(request).temporal


Viewer = Annotated[Principal, Depends(_viewer)]
Operator = Annotated[Principal, Depends(_operator)]
PageViewer = Annotated[Principal, Depends(_page_viewer)]
PageOperator = Annotated[Principal, Depends(_page_operator)]
Pool = Annotated[asyncpg.Pool, Depends(_pool)]
Temporal = Annotated[Client, Depends(_temporal)]

__all__ = ["Operator", "PageOperator", "PageViewer", "Pool", "Temporal", "Viewer",
           "decode_cursor", "encode_cursor", "problem", "render"]
