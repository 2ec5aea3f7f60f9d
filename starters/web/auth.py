"""Who is asking: an API key from the `Authorization: Bearer` header or from the
dashboard's session cookie, its role, and the CSRF token of a cookie session."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal

from fastapi import Request

from pipeworks.web_settings import ApiKey, Role, find_key

SESSION_COOKIE = "pipeworks_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    via: Literal["bearer", "cookie"]
    csrf_token: str

    def can(self, role: Role) -> bool:
        return role == "viewer" or self.role == "operator"


def csrf_token(key: ApiKey) -> str:
    """Derived from the key's digest: a page of another origin can read neither the
    HttpOnly cookie nor this, and every server process derives the same token."""
    return hmac.new(key.digest, b"pipeworks csrf", hashlib.sha256).hexdigest()


def presented_key(request: Request, bearer: str | None) -> tuple[str, Literal["bearer", "cookie"]
                                                                  ] | None:
    if bearer:
        return bearer, "bearer"
    cookie = request.cookies.get(SESSION_COOKIE)
    return (cookie, "cookie") if cookie else None


def identify(keys: list[ApiKey], presented: str, via: Literal["bearer", "cookie"]
             ) -> Principal | None:
    key = find_key(keys, presented)
    if key is None:
        return None
    return Principal(key.name, key.role, via, csrf_token(key))


async def csrf_ok(request: Request, principal: Principal) -> bool:
    """A cookie session's unsafe request must carry the token (header or form field);
    a bearer request cannot be forged by another page, so it needs none."""
    if principal.via == "bearer" or request.method in SAFE_METHODS:
        return True
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    return sent is not None and hmac.compare_digest(sent, principal.csrf_token)
