"""Postgres connection URIs: validate them at start, describe where they point in messages.

asyncpg is what connects, so asyncpg's own DSN parser decides what a URI means: a hand-written
parser would drift from it (socket directories in ``?host=``, host lists, ``[v6]`` literals,
``service=``, ``PGHOST``...). That parser is private, so it is looked up defensively and a
changed signature fails loudly instead of accepting everything. On top of it we refuse the few
URIs asyncpg takes but cannot use, or reads differently from libpq.
"""

from __future__ import annotations

import configparser
import inspect
from collections.abc import Callable
from functools import cache
from typing import Any, TypeAlias
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg
from asyncpg import connect_utils

__all__ = ["check_postgres_dsn", "describe_location"]

# libpq only takes a URI with exactly these prefixes (case-sensitive); anything else it reads
# as key=value conninfo, which asyncpg does not support at all.
_PREFIXES = ("postgresql://", "postgres://")

_PARSER_NAME = "_parse_connect_dsn_and_args"
# Every keyword we pass (all of them, by name): a renamed one makes _parser() fail loudly.
_PARSER_ARGS = (
    "dsn", "host", "port", "user", "password", "passfile", "database", "ssl", "service",
    "servicefile", "direct_tls", "server_settings", "target_session_attrs", "krbsrvname",
    "gsslib",
)

# What the parser yields per host: a socket file path or a TCP (host, port).
Address: TypeAlias = str | tuple[str, int]

# What the parser raises for a bad URI (ClientConfigurationError is a ValueError; int() of a
# bad port gives ValueError, an empty host in a list IndexError, TLS files OSError). TypeError
# is deliberately absent: it would mean the private API changed, which must not pass as "bad URI".
_PARSE_ERRORS = (
    ValueError, LookupError, OSError, configparser.Error,
    asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError,
)


def check_postgres_dsn(value: str) -> str:
    """Return ``value`` if asyncpg can connect with it; else ValueError with one line that never
    contains the password. Socket forms (``postgresql:///db?host=/run/postgresql``) are valid."""
    if not value.startswith(_PREFIXES):
        raise ValueError("not a Postgres URL (expected postgresql://... or postgres://...)")
    try:
        parts = urlsplit(value)
    except ValueError as err:  # e.g. an unclosed "[" of an IPv6 literal
        raise _refusal(str(err), value) from None
    # Both asyncpg and libpq split user info at the first "@", so a raw "@" in the password
    # would end up in the host name (and in its error messages).
    if parts.netloc.count("@") > 1:
        raise _refusal("an '@' in the user name or password must be written as %40", value)
    hostspec = parts.netloc.rpartition("@")[2]
    query = parse_qs(parts.query)
    if hostspec and ("host" in query or "port" in query):
        # libpq lets ?host=/?port= override the host part, asyncpg silently ignores them: the
        # same URI would reach different servers, so make the user pick one place.
        raise _refusal(
            "give host and port either in the host part or as ?host=&port=, not both "
            "(asyncpg ignores the query ones when the host part is set)",
            value,
        )
    try:
        # ssl etc. are left to the URI: loading the TLS files it names is part of "usable".
        addresses = _addresses(value)
    except _PARSE_ERRORS as err:
        raise _refusal(_reason(err), value) from None
    for address in addresses:
        if isinstance(address, str):
            continue
        host, port = address
        # asyncpg passes these through and only fails at connect time; libpq refuses them.
        if not host:
            raise _refusal("empty host name", value)
        if "/" in host:
            raise _refusal("a socket directory must be an absolute path", value)
        if not 1 <= port <= 65535:
            raise _refusal(f"port {port} is out of range 1-65535", value)
    return value


def describe_location(dsn: str) -> str:
    """Where ``dsn`` connects, for messages: ``host:port`` or a socket path per host, joined by
    commas; never credentials. Honours ``?host=``/``?port=`` and PGHOST/PGPORT like asyncpg."""
    try:
        # Only addresses are wanted: keep TLS files, .pgpass and the OS user name out of it.
        addresses = _addresses(
            dsn, ssl=False, direct_tls=False, user="", database="",
            target_session_attrs="any", gsslib="gssapi",
        )
    except Exception:
        # Called while reporting another error, so it must not raise itself.
        return "an unparsable URL"
    return ",".join(_format(address) for address in addresses)


@cache
def _parser() -> Callable[..., Any]:
    parse = getattr(connect_utils, _PARSER_NAME, None)
    if callable(parse):
        params = inspect.signature(parse).parameters
        # Our keywords must exist and anything new must be optional for our call to mean what
        # it meant when this module was written.
        if set(_PARSER_ARGS) <= set(params) and all(
            p.default is not inspect.Parameter.empty
            for name, p in params.items() if name not in _PARSER_ARGS
        ):
            return parse  # type: ignore[no-any-return]
    raise RuntimeError(
        f"asyncpg {asyncpg.__version__} changed its private {_PARSER_NAME}(); "
        "pipeworks/dsn.py must be updated"
    )


def _addresses(dsn: str, **fixed: object) -> list[Address]:
    args: dict[str, object] = dict.fromkeys(_PARSER_ARGS)
    # A given password stops asyncpg from reading ~/.pgpass, which says nothing about the URI.
    args.update(dsn=dsn, password="", **fixed)
    result = _parser()(**args)
    addresses = result[0] if isinstance(result, tuple) and result else None
    if not isinstance(addresses, list) or not all(map(_is_address, addresses)):
        raise RuntimeError(
            f"asyncpg {asyncpg.__version__} {_PARSER_NAME}() returned an unexpected shape; "
            "pipeworks/dsn.py must be updated"
        )
    return addresses


def _is_address(item: object) -> bool:
    if isinstance(item, str):
        return True
    return (
        isinstance(item, tuple) and len(item) == 2
        and isinstance(item[0], str) and isinstance(item[1], int)
    )


def _format(address: Address) -> str:
    if isinstance(address, str):
        return address
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _reason(err: BaseException) -> str:
    text = str(err)
    if isinstance(err, IndexError):
        return "empty host name in the host list"
    if isinstance(err, ValueError) and "int()" in text:
        return "a port is not a number"
    if isinstance(err, ValueError) and "query field" in text:
        # The field it quotes may be part of a password containing "&".
        return "malformed query string (expected key=value pairs joined by &)"
    if isinstance(err, OSError):
        return f"cannot load a file the URL refers to ({err.strerror or text})"
    return text or type(err).__name__


def _refusal(reason: str, value: str) -> ValueError:
    # Messages above avoid echoing input, but asyncpg's own may quote parts of the URI: mask
    # every spelling of the password in whatever ends up in the line.
    line = f"not a usable Postgres URL: {reason.splitlines()[0] if reason else 'invalid'}"
    for secret in sorted(_passwords(value), key=len, reverse=True):
        line = line.replace(secret, "***")
    return ValueError(line)


def _passwords(value: str) -> set[str]:
    netloc = value.partition("://")[2].split("/", 1)[0].split("?", 1)[0]
    found = {netloc.rpartition("@")[0].partition(":")[2]} if "@" in netloc else set()
    for field in value.partition("?")[2].split("&"):
        key, _, val = field.partition("=")
        if unquote(key) in ("password", "sslpassword"):
            found.add(val)
    return {s for raw in found for s in (raw, unquote(raw)) if s}
