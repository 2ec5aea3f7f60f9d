"""Pagination strategies: how one stream's pages are fetched, in order, resumably.

A strategy yields `FetchedPage`s; the landing layer stores each page's body and its
`resume` text, so a retried activity attempt passes the last landed page's `resume`
back and continues right after it. `resume` is opaque to everyone but the strategy
that wrote it.

- `CursorEnvelope`: `limit`/`cursor` query parameters, bodies
  `{"items": [...], "next_cursor": str|null}`.
- `JsonArrayWindows`: one whole JSON array per request, optionally split into time
  windows on a date field that narrow themselves when the upstream struggles.
- `RpcRange`: JSON-RPC batches over a range of integers; `call` and `batch` are the
  JSON-RPC helpers it is built on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, Protocol

import httpx

from pipeworks import json_text
from pipeworks.errors import (
    DataError,
    ErrorCategory,
    PermanentError,
    PipelineError,
    TransientError,
)
from pipeworks.http import (
    MAX_REASON_CHARS,
    ErrorTally,
    HttpPermanentError,
    QueryValue,
    Sleep,
    UpstreamClient,
    http_status,
    query_string,
)


@dataclasses.dataclass
class FetchedPage:
    body: bytes  # raw bytes as received (landed as-is)
    item_count: int
    resume: str | None  # where the NEXT page starts; None: this was the last page


class Paginator(Protocol):
    def pages(self, client: UpstreamClient, path: str, params: Mapping[str, str],
              resume: str | None, tally: ErrorTally) -> AsyncIterator[FetchedPage]:
        """The stream's pages from the start (`resume` None) or from a page's `resume`.

        Implemented as async generators: `async for page in p.pages(...)`. (Declared
        without `async` because an async generator function is a plain function
        returning an AsyncIterator; `async def` here would describe a coroutine.)
        """
        ...


# ---------------------------------------------------------------------------------------
# Cursor envelope


@dataclasses.dataclass
class CursorEnvelope:
    """`{"items": [...], "next_cursor": str|null}` pages, `limit` and `cursor` params.

    `resume` is the next cursor itself. A next cursor that repeats one already requested
    means the upstream's pagination loops: a data failure instead of an endless stream.
    The seen set lives as long as the iterator; a resumed attempt only knows the cursors
    since its resume point unless the caller hands the earlier ones in `seen_cursors`
    (the landing layer has them: the `resume` of every landed page).
    """

    page_size: int = 100
    seen_cursors: Collection[str] = ()
    sleep: Sleep = asyncio.sleep

    async def pages(self, client: UpstreamClient, path: str, params: Mapping[str, str],
                    resume: str | None, tally: ErrorTally) -> AsyncIterator[FetchedPage]:
        seen = set(self.seen_cursors)
        cursor = resume
        if cursor is not None:
            seen.add(cursor)
        fetched = 0
        while True:
            query: dict[str, str | int] = {**params, "limit": self.page_size}
            if cursor is not None:
                query["cursor"] = cursor
            page = await client.get_page(path, query, tally, self.sleep)
            fetched += 1
            if page.next_cursor is not None and page.next_cursor in seen:
                # Checked before the page is handed out: its continuation is broken.
                tally.add(ErrorCategory.DATA)
                raise DataError(
                    f"GET {path}: next_cursor repeats after {fetched} page(s) of this "
                    "attempt: the upstream pagination loops")
            yield FetchedPage(page.body, len(page.items), page.next_cursor)
            if page.next_cursor is None:
                return
            seen.add(page.next_cursor)
            cursor = page.next_cursor


# ---------------------------------------------------------------------------------------
# Whole JSON arrays, optionally in time windows

NO_RESULTS_DETAIL = "No results found."
EMPTY_ARRAY = b"[]"


def is_no_results(response: httpx.Response) -> bool:
    """A 404 that means "no items" (`{"detail":"No results found."}`), not a bad path."""
    if response.status_code != 404:
        return False
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("detail") == NO_RESULTS_DETAIL


def _json_array_page(response: httpx.Response) -> tuple[bytes, int]:
    if response.status_code == 404:  # only the accepted "no results" kind gets here
        # Landed as an empty array so every landed body of the stream has one shape.
        return EMPTY_ARRAY, 0
    payload = json_text.loads(response.content)
    if not isinstance(payload, list):
        raise ValueError("body is not a JSON array")
    return response.content, len(payload)


@dataclasses.dataclass
class JsonArrayWindows:
    """Each request answers one whole JSON array (no pagination upstream).

    Without `field` the stream is a single request, a single page. With `field`, the
    range [start, end) is fetched in windows `<field>>=a&<field><b` of `window` (None:
    one window), each window one page, `resume` = the next window's start and the
    current size. `end` None: one open window `<field>>=start` (it cannot narrow).

    Slow queries fail upstream as 5xx or timeouts, too broad ones as 422, so a window
    narrows: after `halve_after` consecutive 5xx/408/timeout failures it halves, and a
    422 halves it at once, at most `max_refusals` times in a row (a refusal that does
    not depend on the size, e.g. missing entitlement, stays permanent). Never below
    `min_window`: there the error propagates. A 429 never narrows (it propagates after
    the client's waits). Narrowed windows keep their size for the rest of the stream:
    growing back would hit the same slow query again.

    `200 []` and a 404 `{"detail":"No results found."}` are an empty page (landed as
    `[]`); any other 404 is permanent.
    """

    field: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    window: timedelta | None = None
    min_window: timedelta = timedelta(seconds=30)
    halve_after: int = 2
    max_refusals: int = 1
    sleep: Sleep = asyncio.sleep

    def __post_init__(self) -> None:
        if self.field is not None and self.start is None:
            raise ValueError("a windowed stream needs a start")
        if self.window is not None and self.window <= timedelta(0):
            raise ValueError("window must be positive")
        if self.halve_after < 1:
            raise ValueError("halve_after must be at least 1")

    async def pages(self, client: UpstreamClient, path: str, params: Mapping[str, str],
                    resume: str | None, tally: ErrorTally) -> AsyncIterator[FetchedPage]:
        if self.field is None or self.start is None:
            body, count = await self._fetch(client, path, list(params.items()), tally, None)
            yield FetchedPage(body, count, None)
            return
        if self.end is None:
            filters: list[tuple[str, QueryValue]] = [
                *params.items(), (f"{self.field}>=", self.start)]
            body, count = await self._fetch(client, path, filters, tally, None)
            yield FetchedPage(body, count, None)
            return
        async for page in self._windows(client, path, params, resume, tally,
                                        self.field, self.start, self.end):
            yield page

    async def _windows(self, client: UpstreamClient, path: str, params: Mapping[str, str],
                       resume: str | None, tally: ErrorTally, field: str,
                       start: datetime, end: datetime) -> AsyncIterator[FetchedPage]:
        if resume is None:
            lower, size = start, self.window or (end - start)
        else:
            lower, size = _parse_window_resume(resume)
        refusals = 0
        while lower < end:
            upper = min(lower + size, end)
            can_halve = (upper - lower) / 2 >= self.min_window
            filters: list[tuple[str, QueryValue]] = [
                *params.items(), (f"{field}>=", lower), (f"{field}<", upper)]
            try:
                body, count = await self._fetch(
                    client, path, filters, tally, self.halve_after if can_halve else None)
            except PipelineError as err:
                status = http_status(err)
                struggling = isinstance(err, TransientError) and status != 429
                refused = (isinstance(err, PermanentError) and status == 422
                           and refusals < self.max_refusals)
                if can_halve and (struggling or refused):
                    refusals += 1 if refused else 0
                    size = (upper - lower) / 2
                    continue
                raise
            refusals = 0
            lower = upper
            yield FetchedPage(body, count,
                              _window_resume(lower, size) if lower < end else None)

    async def _fetch(self, client: UpstreamClient, path: str,
                     filters: Sequence[tuple[str, QueryValue]], tally: ErrorTally,
                     max_attempts: int | None) -> tuple[bytes, int]:
        return await client.request("GET", path, _json_array_page, tally,
                                    params=query_string(filters), accept=is_no_results,
                                    max_attempts=max_attempts, sleep=self.sleep)


def _window_resume(start: datetime, size: timedelta) -> str:
    return json.dumps({"start": start.isoformat(), "size_seconds": size.total_seconds()})


def _parse_window_resume(resume: str) -> tuple[datetime, timedelta]:
    try:
        state = json.loads(resume)
        start = datetime.fromisoformat(state["start"])
        size = timedelta(seconds=float(state["size_seconds"]))
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"not a window resume point: {resume!r}") from err
    if start.utcoffset() is None or size <= timedelta(0):
        raise ValueError(f"not a window resume point: {resume!r}")
    return start, size


# ---------------------------------------------------------------------------------------
# JSON-RPC


class RpcError(PipelineError):
    """An error object a JSON-RPC server answered for one call. The category comes from
    the subclass; `code` and `rpc_message` let a caller turn some codes into findings
    instead of failures."""

    def __init__(self, method: str, code: int, rpc_message: str) -> None:
        super().__init__(f"RPC {method}: error {code}: {_clip(rpc_message)}")
        self.method = method
        self.code = code
        self.rpc_message = rpc_message


class RpcTransientError(RpcError, TransientError):
    pass


class RpcPermanentError(RpcError, PermanentError):
    pass


@dataclasses.dataclass(frozen=True)
class JsonRpc:
    """How to talk to one JSON-RPC server.

    `version`: "2.0", or "1.0" for servers that answer RPC errors with HTTP 400/404/500
    (both are read either way). `transient_codes` / `transient_messages` (substrings)
    name the errors that pass (e.g. a server warming up); every other error code is
    permanent. `refresh_credentials`: called once after a 401; returning True (new
    credentials set on the client, e.g. a re-read cookie file) retries the request once.
    """

    path: str = "/"
    version: Literal["1.0", "2.0"] = "2.0"
    transient_codes: frozenset[int] = frozenset({-28})
    transient_messages: tuple[str, ...] = ()
    refresh_credentials: Callable[[], bool] | None = None
    sleep: Sleep = asyncio.sleep

    def request(self, request_id: int, method: str, params: Sequence[Any]) -> dict[str, Any]:
        # Always with an id: a request without one is a notification, answered by 204.
        return {"jsonrpc": self.version, "id": request_id, "method": method,
                "params": list(params)}

    def error(self, method: str, error: Any) -> RpcError:
        if not isinstance(error, dict) or not isinstance(error.get("code"), int):
            raise ValueError("error member is not a JSON-RPC error object")
        code = error["code"]
        message = error.get("message")
        message = message if isinstance(message, str) else ""
        if code in self.transient_codes or any(s in message for s in self.transient_messages):
            return RpcTransientError(method, code, message)
        return RpcPermanentError(method, code, message)

    async def post(self, client: UpstreamClient, path: str, body: Any,
                   parse: Callable[[httpx.Response], Any], tally: ErrorTally) -> Any:
        refreshed = False
        while True:
            try:
                return await client.request("POST", path, parse, tally, json_body=body,
                                            accept=is_rpc_error_reply, sleep=self.sleep)
            except HttpPermanentError as err:
                if (err.status == 401 and not refreshed
                        and self.refresh_credentials is not None
                        and self.refresh_credentials()):
                    refreshed = True
                    continue
                raise


DEFAULT_RPC = JsonRpc()


def _rpc_json(response: httpx.Response) -> Any:
    # Decimals, never binary floats: amounts must survive exactly.
    return json.loads(response.content, parse_float=Decimal)


def is_rpc_error_reply(response: httpx.Response) -> bool:
    """An error status whose body is a JSON-RPC reply: the reply decides, not the status
    (legacy servers send RPC errors as 400/404/500). HTML or text 5xx stay transient."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("error"), dict)


def _reply_outcome(rpc: JsonRpc, method: str, reply: Any) -> Any:
    """The result of one reply object, or its error as an (unraised) RpcError."""
    if not isinstance(reply, dict) or "id" not in reply:
        raise ValueError("not a JSON-RPC reply object")
    error = reply.get("error")
    if error is not None:
        return rpc.error(method, error)
    if "result" not in reply:
        raise ValueError("JSON-RPC reply has neither result nor error")
    return reply["result"]


async def call(client: UpstreamClient, method: str, params: Sequence[Any] = (), *,
               tally: ErrorTally, rpc: JsonRpc = DEFAULT_RPC) -> Any:
    """One JSON-RPC call's result; an error reply raises its RpcError (transient ones
    retried in-process first)."""
    request_id = 1

    def parse(response: httpx.Response) -> Any:
        reply = _rpc_json(response)
        outcome = _reply_outcome(rpc, method, reply)
        if isinstance(outcome, RpcError):
            # Before the id check: a parse error's reply has a null id.
            raise outcome
        if reply["id"] != request_id:
            raise ValueError("JSON-RPC reply id does not match the request")
        return outcome

    return await rpc.post(client, rpc.path, rpc.request(request_id, method, params), parse,
                          tally)


async def batch(client: UpstreamClient, calls: Sequence[tuple[str, Sequence[Any]]], *,
                tally: ErrorTally, rpc: JsonRpc = DEFAULT_RPC,
                keep_errors: Callable[[RpcError], bool] | None = None) -> list[Any]:
    """The results of `calls` (method, params) in call order, sent as one batch.

    Replies are matched by id (servers may answer in any order). A transient element
    error retries the whole batch; a permanent one raises, unless `keep_errors` says the
    caller wants it in place of the result (an RpcError instance, not raised).
    """
    if not calls:
        return []
    requests = [(i, method, params) for i, (method, params) in enumerate(calls)]
    outcomes = await _exchange_batch(client, rpc.path, requests, tally, rpc, keep_errors)
    return outcomes[1]


async def _exchange_batch(
    client: UpstreamClient, path: str, requests: Sequence[tuple[int, str, Sequence[Any]]],
    tally: ErrorTally, rpc: JsonRpc, keep_errors: Callable[[RpcError], bool] | None,
) -> tuple[bytes, list[Any]]:
    """The raw body and the outcomes in request order of one batch exchange."""
    methods = {request_id: method for request_id, method, _ in requests}
    if len(methods) != len(requests):
        raise ValueError("batch request ids must be unique")

    def parse(response: httpx.Response) -> tuple[bytes, list[Any]]:
        replies = _rpc_json(response)
        if isinstance(replies, dict) and isinstance(replies.get("error"), dict):
            # The whole batch was refused with one error object (e.g. unparsable).
            raise rpc.error("batch", replies["error"])
        if not isinstance(replies, list) or len(replies) != len(requests):
            raise ValueError("batch reply is not an array with one reply per request")
        by_id: dict[Any, Any] = {}
        for reply in replies:
            if not isinstance(reply, dict) or reply.get("id") not in methods:
                raise ValueError("batch reply with an unknown or missing id")
            if reply["id"] in by_id:
                raise ValueError("batch reply with a repeated id")
            by_id[reply["id"]] = reply
        outcomes = [_reply_outcome(rpc, method, by_id[request_id])
                    for request_id, method, _ in requests]
        errors = [o for o in outcomes if isinstance(o, RpcError)]
        # Transient first: the whole batch is retried, so one warm-up error must not be
        # masked by a permanent error the caller might have kept.
        for err in errors:
            if isinstance(err, TransientError):
                raise err
        for err in errors:
            if keep_errors is None or not keep_errors(err):
                raise err
        return response.content, outcomes

    body = [rpc.request(request_id, method, params) for request_id, method, params in requests]
    result: tuple[bytes, list[Any]] = await rpc.post(client, path, body, parse, tally)
    return result


@dataclasses.dataclass
class RpcRange:
    """Pages of JSON-RPC batches over the integers [start, stop), e.g. one
    `getblockstats`-style call per height: `params_for(n)` gives the call's params.

    Each page is one batch of up to `batch_size` calls whose request id is the integer
    itself (so the landed body maps back to it); the body is the raw JSON array of
    replies as received, `resume` the next integer. `keep_errors`: element errors to
    land in the body as the outcome for that integer (findings, e.g. data the server
    no longer has) instead of failing the page. `path` and `params` of `pages` are the
    endpoint path and its query (usually none).
    """

    method: str
    params_for: Callable[[int], Sequence[Any]]
    start: int
    stop: int
    batch_size: int = 50
    rpc: JsonRpc = DEFAULT_RPC
    keep_errors: Callable[[RpcError], bool] | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")

    async def pages(self, client: UpstreamClient, path: str, params: Mapping[str, str],
                    resume: str | None, tally: ErrorTally) -> AsyncIterator[FetchedPage]:
        target = f"{path}?{query_string(params)}" if params else path
        position = self.start if resume is None else int(resume)
        while position < self.stop:
            upper = min(position + self.batch_size, self.stop)
            requests = [(n, self.method, self.params_for(n)) for n in range(position, upper)]
            body, _ = await _exchange_batch(client, target, requests, tally, self.rpc,
                                            self.keep_errors)
            position = upper
            yield FetchedPage(body, len(requests),
                              str(position) if position < self.stop else None)


def _clip(text: str) -> str:
    # Servers answer some errors with a method's whole help text.
    return text if len(text) <= MAX_REASON_CHARS else text[:MAX_REASON_CHARS] + "…"
