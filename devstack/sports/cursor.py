"""Opaque pagination cursors bound to the request that produced them.

A cursor carries the listing key of the last item served and a digest of the path and
filters, so replaying it against another path or filter is detected (400) instead of
silently serving a wrong page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from fractions import Fraction

from devstack.sports.listing import Key

_VERSION = "c1"


class CursorError(ValueError):
    pass


def signature(path: str, filters: str = "") -> str:
    return hashlib.sha256(f"{path}?{filters}".encode()).hexdigest()[:16]


def encode_cursor(sig: str, key: Key) -> str:
    raw = f"{_VERSION}.{sig}.{key}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(token: str, sig: str) -> Key:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise CursorError("cursor is not valid") from exc
    version, _, rest = raw.partition(".")
    token_sig, _, key_text = rest.partition(".")
    if version != _VERSION or not key_text:
        raise CursorError("cursor is not valid")
    if token_sig != sig:
        raise CursorError("cursor belongs to a different path or filter")
    try:
        key = Fraction(key_text)
    except (ValueError, ZeroDivisionError) as exc:
        raise CursorError("cursor is not valid") from exc
    return int(key) if key.denominator == 1 else key
