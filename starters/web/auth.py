"""Who is asking: an API key from the `Authorization: Bearer` header or from the
dashboard's session cookie, its role, and the CSRF token of a cookie session."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Literal

from fastapi import Request

from pipeworks.web_settings import ApiKey, Role, find_key, role_allows

SESSION_COOKIE = "pipeworks_session"
# A dashboard session lasts this long from its log-in.
SESSION_SECONDS = 12 * 3600
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
        return role_allows(self.role, role)


def csrf_token(key: ApiKey) -> str:
    """Derived from the key's digest: a page of another origin can read neither the
    HttpOnly cookie nor this, and every server process derives the same token."""
    return hmac.new(key.digest, b"pipeworks csrf", hashlib.sha256).hexdigest()


def _session_mac(key: ApiKey, issued: int) -> str:
    return hmac.new(key.digest, f"pipeworks session {key.name} {issued}".encode(),
                    hashlib.sha256).hexdigest()


def session_token(key: ApiKey, now: float | None = None) -> str:
    """What the session cookie holds: the key's name, when the session began, and a MAC
    keyed by the key's digest. Not the key: a cookie sent to another service on the
    same host (cookies ignore ports) cannot be used as one. Every server process checks
    it alike, and removing the key from PIPEWORKS_API_KEYS ends its sessions."""
    issued = int(time.time() if now is None else now)
    return f"{key.name}.{issued}.{_session_mac(key, issued)}"


def session_key(keys: list[ApiKey], token: str, now: float | None = None) -> ApiKey | None:
    name, _, rest = token.partition(".")
    issued_text, _, mac = rest.partition(".")
    if not issued_text.isdigit():
        return None
    issued = int(issued_text)
    age = (time.time() if now is None else now) - issued
    key = next((k for k in keys if k.name == name), None)
    if key is None or not 0 <= age <= SESSION_SECONDS:
        return None
    return key if hmac.compare_digest(_session_mac(key, issued).encode(),
                                      mac.encode(errors="replace")) else None


def principal_of(request: Request, keys: list[ApiKey], bearer: str | None
                 ) -> tuple[bool, Principal | None]:
    """(whether anything was presented, who it is, if anyone)."""
    if bearer:
        key = find_key(keys, bearer)
        return True, (Principal(key.name, key.role, "bearer", csrf_token(key))
                      if key else None)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return False, None
    key = session_key(keys, cookie)
    return True, Principal(key.name, key.role, "cookie", csrf_token(key)) if key else None


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
    return sent is not None and hmac.compare_digest(
        sent.encode(errors="replace"), principal.csrf_token.encode())
