"""JSON as Core's UniValue writes it: compact, and numbers whose text matters written
verbatim. BTC amounts are ``ValueFromAmount``: exactly 8 decimals (``50.00000000``), so a
client parsing with Decimal gets the exact satoshis; doubles (difficulty) use 16
significant digits, so 1.0 is written ``1`` as Core does.

The standard encoder cannot emit a bare number token for a custom type, so such values
are encoded as marked strings and unquoted afterwards.
"""

from __future__ import annotations

import json
import re
import secrets
from decimal import Decimal
from typing import Any

_MARK = f"@num-{secrets.token_hex(8)}:"
_TOKEN = re.compile('"' + re.escape(_MARK) + r'(-?[0-9][0-9.eE+-]*)"')


class Number:
    """A JSON number written exactly as ``text``."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def btc(sats: int) -> Number:
    """Satoshis as a BTC amount with exactly 8 decimals."""
    sign = "-" if sats < 0 else ""
    whole, frac = divmod(abs(sats), 100_000_000)
    return Number(f"{sign}{whole}.{frac:08d}")


def double(value: float) -> Number:
    return Number(format(value, ".16g"))


def _default(value: Any) -> Any:
    if isinstance(value, Number):
        return _MARK + value.text
    if isinstance(value, Decimal) and value.is_finite():
        # A request id parsed as a decimal number is echoed as written.
        return _MARK + str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_default)


def dumps(value: Any) -> str:
    text = _ENCODER.encode(value)
    return _TOKEN.sub(r"\1", text) if _MARK in text else text
