"""RPC authentication as Core's: HTTP Basic with ``-rpcuser``/``-rpcpassword``, or the
``.cookie`` file (``__cookie__:<64 hex>``) the node writes anew at every start and
deletes at shutdown."""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import secrets
from pathlib import Path
from typing import Literal

COOKIE_USER = "__cookie__"
COOKIE_NAME = ".cookie"

Verdict = Literal["ok", "missing", "wrong"]


class RpcAuth:
    def __init__(self, user: str | None, password: str | None,
                 cookie_dir: str | os.PathLike[str] | None) -> None:
        if (user is None) != (password is None):
            raise ValueError("set the RPC user and password together")
        if user is not None and ":" in user:
            raise ValueError("the RPC user must not contain ':'")
        self.user = user
        self.password = password
        self.cookie_file = None if cookie_dir is None else Path(cookie_dir) / COOKIE_NAME
        self._cookie: str | None = None

    @property
    def cookie(self) -> str | None:
        """The current cookie file content, when cookie auth is on and the node runs."""
        return self._cookie

    def write_cookie(self) -> None:
        """A new cookie (at every start): written to a temporary file, then renamed."""
        if self.cookie_file is None:
            return
        content = f"{COOKIE_USER}:{secrets.token_hex(32)}"
        self.cookie_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.cookie_file.with_name(COOKIE_NAME + ".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(content)
        temporary.replace(self.cookie_file)
        self._cookie = content

    def remove_cookie(self) -> None:
        if self.cookie_file is not None and self._cookie is not None:
            self.cookie_file.unlink(missing_ok=True)
        self._cookie = None

    def check(self, header: str | None) -> Verdict:
        """``missing``: no Authorization header (401 at once); ``wrong``: 401 after the
        node's 250 ms brute-force delay."""
        if header is None:
            return "missing"
        if not header.startswith("Basic "):
            return "wrong"
        try:
            given = base64.b64decode(header[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return "wrong"
        accepted = []
        if self.user is not None and self.password is not None:
            accepted.append(f"{self.user}:{self.password}".encode())
        if self._cookie is not None:
            accepted.append(self._cookie.encode())
        # Compare with every credential, always, so timing tells nothing.
        matches = [hmac.compare_digest(given, expected) for expected in accepted]
        return "ok" if any(matches) else "wrong"
