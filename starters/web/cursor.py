"""Opaque pagination cursors: the sort key of the last item of a page, so that the
next page starts after it (keyset pagination: stable while rows are added)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from starters.web.problems import problem


def encode_cursor(values: list[Any]) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, types: tuple[type, ...]) -> list[Any]:
    """The values, each of its type (datetime from ISO text); a 400 problem otherwise."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(types):
            raise ValueError("wrong shape")
        values: list[Any] = []
        for value, kind in zip(raw, types, strict=True):
            if kind is datetime:
                values.append(datetime.fromisoformat(value))
            elif isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
                values.append(value)
            else:
                raise ValueError("wrong type")
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        problem(400, "Invalid cursor", "cursor: not one this API returned; start again "
                                       "without it")
    return values
