"""Dashboard sessions: `/login` (a form, or `?key=` as `pipeworks dev up` prints) puts a
session token of the key (auth.session_token) in an HttpOnly, SameSite=Strict cookie;
`/logout` removes it."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from pipeworks.web_settings import find_key
from starters.web.auth import SESSION_COOKIE, SESSION_SECONDS, session_token
from starters.web.deps import refuse_if_limited
from starters.web.rendering import render
from starters.web.state import server

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only a path of this site: never an open redirect to another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    if request.cookies.get(SESSION_COOKIE):  # a key that is no longer valid
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def _logged_in(request: Request, key: str, target: str | None) -> Response:
    found = find_key(server(request).keys, key)
    if found is None:
        await refuse_if_limited(request, "unknown key")
        return render(request, "login.html", {"error": "That key is not valid.",
                                              "next": safe_next(target)}, status_code=401)
    response = RedirectResponse(safe_next(target), status_code=303)
    response.set_cookie(SESSION_COOKIE, session_token(found), httponly=True,
                        samesite="strict", path="/", max_age=SESSION_SECONDS,
                        secure=request.url.scheme == "https")
    return response


@router.get("/login")
async def login_form(request: Request, key: str | None = None,
                     next: str | None = None) -> Response:
    if key:
        # The redirect drops the key from the address bar and the history.
        return await _logged_in(request, key, next)
    return render(request, "login.html", {"error": None, "next": safe_next(next)})


@router.post("/login")
async def login(request: Request, key: Annotated[str, Form()],
                next: Annotated[str, Form()] = "/") -> Response:
    return await _logged_in(request, key.strip(), next)


@router.api_route("/logout", methods=["GET", "POST"])
async def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
