"""HTTP client for upstream APIs, with error categories.

One `request` method serves every upstream shape: GET with a query (mapping or an
already encoded string, see `query_string`), POST with a JSON body, Bearer or Basic
auth. Pagination is not its business: the strategies in `pipeworks.pagination` call it.

Short transient trouble (a 503, a reset, a 429 with a small Retry-After) is
retried here, inside the activity, because a Temporal activity retry costs a
round trip and restarts the stream's bookkeeping. When the in-process budget is
spent, the error goes up as `TransientError` and Temporal's retry policy takes
over, resuming from the heartbeated position.

Tally convention (the activity layer relies on it): this client counts the
transient failures it absorbed or raised and the data failures it raised; a
permanent failure is counted by whoever finally reports it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from pipeworks import json_text
from pipeworks.errors import (
    DataError,
    ErrorCategory,
    PermanentError,
    PipelineError,
    TransientError,
)
from pipeworks.metrics import PipelineMetrics, current_stage

# Waits beyond this budget (per request) are not slept through inside an activity:
# the activity fails as transient and Temporal schedules the retry after the delay.
MAX_IN_PROCESS_WAIT_SECONDS = 30.0
MALFORMED_ATTEMPTS = 3
MAX_REASON_CHARS = 300
# An upstream asking for a day's wait (or infinity) is not taken at its word.
MAX_RETRY_AFTER_SECONDS = 900.0

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
# A mapping is encoded by httpx; a string is a query already encoded (`query_string`)
# and is sent as it is, because httpx would re-encode `+`, `:` and the operators.
Params = Mapping[str, str | int] | str
QueryValue = str | int | float | bool | datetime
Filters = Mapping[str, QueryValue] | Iterable[tuple[str, QueryValue]]
# Longest first: `>=` must not be read as `>` followed by a value starting with `=`.
QUERY_OPERATORS = (">=", "<=", ">", "<", "=")


class RateLimit(Protocol):
    async def acquire(self) -> float:
        """Returns once the next request may go."""
        ...


class HttpTransientError(TransientError):
    """A transient failure of one exchange. `status` is None when no response came back
    (timeout, reset); callers use it to tell server trouble (5xx) from a 429."""

    def __init__(self, message: str, *, status: int | None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.status = status


class HttpPermanentError(PermanentError):
    """A permanent failure of one exchange, with the HTTP status that decided it (a 422
    narrows a query window, a 401 may be worth one credentials refresh)."""

    def __init__(self, message: str, *, status: int | None) -> None:
        super().__init__(message)
        self.status = status


def http_status(err: BaseException) -> int | None:
    """The HTTP status behind a failure raised by this client, if there was one."""
    if isinstance(err, HttpTransientError | HttpPermanentError):
        return err.status
    return None


@dataclass
class Page:
    items: list[Any]
    next_cursor: str | None
    body: bytes


@dataclass
class ErrorTally:
    """Errors absorbed while serving one activity, by category."""

    counts: dict[str, int] = field(default_factory=lambda: {c.value: 0 for c in ErrorCategory})

    def add(self, category: ErrorCategory, n: int = 1) -> None:
        self.counts[category.value] = self.counts.get(category.value, 0) + n

    def merge(self, other: Mapping[str, int]) -> None:
        for key, n in other.items():
            self.counts[key] = self.counts.get(key, 0) + int(n)


def _retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # An HTTP-date: fall back to our own backoff.
    if seconds != seconds:  # NaN
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_SECONDS)


def _retry_after(response: httpx.Response, default: float) -> float:
    """The wait a 429 asks for; `Retry-After: 0` means now, only a missing or unreadable
    header falls back to the default."""
    seconds = _retry_after_seconds(response)
    return default if seconds is None else seconds


def _describe(response: httpx.Response) -> str:
    """A short reason from an error body that may be JSON, HTML or empty."""
    text = response.text.strip()
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("error"):
        detail = body.get("detail")
        text = f"{body['error']}" + (f" ({detail})" if detail else "")
        # It ends up in workflow history and logs: an upstream's essay does not.
        return text if len(text) <= MAX_REASON_CHARS else text[:MAX_REASON_CHARS] + "…"
    return f"HTTP {response.status_code}"


def parse_object(body: bytes) -> dict[str, Any]:
    payload = json_text.loads(body)
    if not isinstance(payload, dict):
        raise ValueError("body is not a JSON object")
    return payload


def parse_page(body: bytes) -> Page:
    """Raises ValueError when the body is not a cursor page (`items` + `next_cursor`)."""
    payload = json_text.loads(body)
    if not isinstance(payload, dict) or not isinstance(payload.get("items"), list):
        raise ValueError("body is not a page: expected an object with an 'items' list")
    cursor = payload.get("next_cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise ValueError("next_cursor is neither a string nor null")
    return Page(payload["items"], cursor or None, body)


def _query_value(value: QueryValue) -> str:
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            # A naive time would silently mean UTC upstream, whatever the caller meant.
            raise ValueError("query timestamps need an offset (an aware datetime)")
        return value.isoformat()
    if isinstance(value, date):
        # Servers widen a date-only bound to whole days: never send one.
        raise ValueError("query bounds need a timestamp, not a date")
    return str(value)


def query_string(filters: Filters) -> str:
    """A query of filters whose operator is part of the key, e.g.
    `{"session_key": 9472, "date>=": t0, "date<": t1}` →
    `session_key=9472&date>=2024-03-02T15:00:00%2B00:00&date<2024-03-02T15:05:00%2B00:00`.

    A key is a field name, optionally followed by one of `=`, `>=`, `<=`, `>`, `<`
    (none means `=`). Every filter is written `<field><op><value>`: for `=`, `>=` and
    `<=` a server splits it at the `=` (key `date>`, value `…`), for `>` and `<` the
    whole filter is the key with an empty value, which is how such servers want strict
    bounds. Values are percent-encoded except `:`, so `+` (a timezone offset) becomes
    `%2B` (a bare `+` would be read as a space) and an `=` or `&` in a value cannot split
    the filter. Pairs instead of a mapping repeat a field (OR-ed equalities).
    """
    pairs = filters.items() if isinstance(filters, Mapping) else filters
    parts = []
    for key, value in pairs:
        name, op = key, "="
        for candidate in QUERY_OPERATORS:
            if key.endswith(candidate):
                name, op = key[: -len(candidate)], candidate
                break
        if not name:
            raise ValueError(f"query filter {key!r} has no field name")
        parts.append(f"{quote(name, safe='')}{op}{quote(_query_value(value), safe=':')}")
    return "&".join(parts)


def _basic_authorization(username: str, password: str) -> str:
    if ":" in username:
        # Basic auth joins with `:`: such a name would shift the split. Not echoed.
        raise ValueError("a basic auth username must not contain ':'")
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


MAX_HEADER_BYTES = 64 * 1024


def aiohttp_transport(max_connections: int) -> httpx.AsyncBaseTransport:
    """httpx on aiohttp's connection pool instead of httpcore's.

    httpcore's pool (1.0.x) scans every pooled connection (polling each idle one's
    socket) twice per request: at 16-32 requests at once that cost the worker ~4 ms of
    CPU per request, against ~0.6 ms on aiohttp's (benchmarks/README.md). The client
    keeps httpx's API: requests, responses and (mapped) exceptions.

    The session is made on first use, on the loop that uses it; no cookies are kept.
    Proxies from the environment still go through httpx's own transports."""

    # The certificates httpx would verify against (certifi, or SSL_CERT_FILE/_DIR).
    tls = httpx.create_ssl_context(trust_env=True)

    def session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections, keepalive_timeout=5.0,
                                           ssl=tls),
            cookie_jar=aiohttp.DummyCookieJar(),
            # aiohttp refuses header lines over 8 KiB (a long `Link`, a big cookie),
            # which httpcore took: as long as the whole head may be.
            max_line_size=MAX_HEADER_BYTES, max_field_size=MAX_HEADER_BYTES)

    return AiohttpTransport(
        limits=httpx.Limits(max_connections=max_connections,
                            max_keepalive_connections=max_connections),
        client=session)


class UpstreamClient:
    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        timeout_seconds: float = 10.0,
        max_attempts: int = 4,
        backoff_base_seconds: float = 0.2,
        backoff_max_seconds: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 64,
        metrics: PipelineMetrics | None = None,
        rate_limit: RateLimit | None = None,
        retry_after_default_seconds: float = 1.0,
    ) -> None:
        """`token`: Bearer; `basic_auth`: (username, password); at most one of them.
        `retry_after_default_seconds`: the wait after a 429 without Retry-After."""
        if token and basic_auth is not None:
            raise ValueError("give either a bearer token or basic auth credentials, not both")
        headers = {"Accept": "application/json", "User-Agent": "pipeworks"}
        # A default header, not httpx's `auth=`: httpx masks Authorization in the
        # headers' repr, and no code path here formats headers into a message.
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif basic_auth is not None:
            headers["Authorization"] = _basic_authorization(*basic_auth)
        self._uses_basic_auth = basic_auth is not None
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_seconds),
            transport=transport or aiohttp_transport(max_connections),
        )
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base_seconds
        self._backoff_max = backoff_max_seconds
        self._random = random.Random()  # noqa: S311 - jitter, not security
        self._metrics = metrics or PipelineMetrics.disabled()
        self._rate_limit = rate_limit
        self._retry_after_default = retry_after_default_seconds

    async def aclose(self) -> None:
        await self._http.aclose()

    def set_basic_auth(self, username: str, password: str) -> None:
        """New Basic credentials for the next requests: a server that rotates them (a
        cookie file rewritten at every start) answers 401 until they are re-read."""
        if not self._uses_basic_auth:
            raise ValueError("this client was not configured with basic auth")
        self._http.headers["Authorization"] = _basic_authorization(username, password)

    def _backoff(self, attempt: int) -> float:
        ceiling: float = min(self._backoff_max, self._backoff_base * 2.0 ** (attempt - 1))
        return ceiling / 2 + self._random.uniform(0, ceiling / 2)

    async def get_page(
        self,
        path: str,
        params: Mapping[str, str | int],
        tally: ErrorTally,
        sleep: Sleep = asyncio.sleep,
    ) -> Page:
        return await self.request("GET", path, _content(parse_page), tally,
                                  params=params, sleep=sleep)

    async def get_object(self, path: str, tally: ErrorTally) -> dict[str, Any]:
        """A single entity (not a page)."""
        return await self.request("GET", path, _content(parse_object), tally)

    async def request(
        self,
        method: str,
        path: str,
        parse: Callable[[httpx.Response], T],
        tally: ErrorTally,
        *,
        params: Params | None = None,
        json_body: Any = None,
        accept: Callable[[httpx.Response], bool] | None = None,
        max_attempts: int | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> T:
        """One request, retried in-process for transient trouble and malformed bodies.

        `parse` turns the response into the result. It raises ValueError for a malformed
        body (retried a few times, then a data failure) or a `PipelineError` to classify
        the answer itself (a `TransientError` is retried like an HTTP one).
        `accept`: error responses (status >= 300) it returns True for go to `parse`
        instead of being classified by status, for upstreams whose error statuses carry
        an answer (a 404 that means "no items", an RPC error object in a 500).
        `json_body`: sent as JSON (POST); None sends no body.
        `max_attempts`: this call's transient budget instead of the client's, for a
        caller that reacts to repeated failures itself (e.g. by narrowing its query).
        Categories: 429 transient after Retry-After; 5xx, 408, timeouts and resets
        transient; 404 and other statuses >= 300 permanent.
        """
        limit = max_attempts if max_attempts is not None else self._max_attempts
        malformed = 0
        attempt = 0
        waited = 0.0
        while True:
            attempt += 1
            try:
                return parse(await self._send(method, path, params, json_body, accept))
            except TransientError as err:
                tally.add(ErrorCategory.TRANSIENT)
                wait = err.retry_after if err.retry_after is not None else self._backoff(attempt)
                if attempt >= limit or waited + wait > MAX_IN_PROCESS_WAIT_SECONDS:
                    raise
                self._metrics.retry(current_stage.get(), ErrorCategory.TRANSIENT.value)
                waited += wait
                await sleep(wait)
            except DataError:
                tally.add(ErrorCategory.DATA)
                raise
            except PipelineError:
                raise  # permanent (or system): counted by whoever reports it
            except ValueError as err:
                malformed += 1
                if malformed >= MALFORMED_ATTEMPTS:
                    tally.add(ErrorCategory.DATA)
                    raise DataError(
                        f"{method} {path}: malformed response {malformed} times: "
                        f"{_clip(str(err))}") from None
                tally.add(ErrorCategory.TRANSIENT)
                self._metrics.retry(current_stage.get(), ErrorCategory.TRANSIENT.value)
                await sleep(self._backoff(attempt))

    async def _send(self, method: str, path: str, params: Params | None, json_body: Any,
                    accept: Callable[[httpx.Response], bool] | None) -> httpx.Response:
        if self._rate_limit is not None:
            await self._rate_limit.acquire()
        started = time.monotonic()
        status_seen: list[int] = []  # stays empty when no response came back
        try:
            return await self._send_once(method, path, params, json_body, accept,
                                         status_seen)
        finally:
            self._metrics.upstream_request(current_stage.get(),
                                           status_seen[0] if status_seen else None,
                                           time.monotonic() - started)

    async def _send_once(self, method: str, path: str, params: Params | None,
                         json_body: Any, accept: Callable[[httpx.Response], bool] | None,
                         status_seen: list[int]) -> httpx.Response:
        url: str | httpx.URL = path
        mapping: dict[str, str | int] | None = None
        if isinstance(params, str):
            # Only `<` and `>` get percent-encoded by httpx here, which servers decode.
            url = httpx.URL(path, query=params.encode()) if params else path
        elif params:
            mapping = dict(params)
        # Messages never include the URL's query or headers, nor httpx's own text
        # (which can quote the URL): credentials stay out of history and logs.
        try:
            response = await self._http.request(method, url, params=mapping, json=json_body)
        except httpx.TimeoutException as err:
            # The aiohttp transport reports a reset or refused connection as a connect
            # timeout: name what happened, from its cause.
            cause = err.__cause__
            what = ("timed out" if cause is None or isinstance(cause, TimeoutError)
                    else type(cause).__name__)
            raise HttpTransientError(f"{method} {path}: {what}", status=None) from None
        except httpx.TooManyRedirects:
            raise HttpPermanentError(f"{method} {path}: too many redirects",
                                     status=None) from None
        except httpx.DecodingError as err:
            raise ValueError(f"undecodable body: {err}") from None  # malformed: retried, then data
        except (httpx.HTTPError, aiohttp.ClientError) as err:
            # aiohttp errors the transport does not map: a status line or header that is
            # not HTTP, like httpx's RemoteProtocolError.
            raise HttpTransientError(f"{method} {path}: {type(err).__name__}",
                                     status=None) from None
        status = response.status_code
        status_seen.append(status)
        if status < 300 or (accept is not None and accept(response)):
            return response
        reason = f"{method} {path}: {_describe(response)}"
        if status == 429:
            raise HttpTransientError(
                reason, status=status,
                retry_after=_retry_after(response, self._retry_after_default))
        if status >= 500 or status == 408:
            raise HttpTransientError(reason, status=status,
                                     retry_after=_retry_after_seconds(response))
        if status == 404:
            raise HttpPermanentError(f"{reason} (not found)", status=status)
        raise HttpPermanentError(reason, status=status)


def _content(parse: Callable[[bytes], T]) -> Callable[[httpx.Response], T]:
    """A body parser as a response parser."""
    return lambda response: parse(response.content)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_REASON_CHARS else text[:MAX_REASON_CHARS] + "…"
