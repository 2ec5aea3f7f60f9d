"""HTTP client for paginated upstream APIs, with error categories.

Short transient trouble (a 503, a reset, a 429 with a small Retry-After) is
retried here, inside the activity, because a Temporal activity retry costs a
round trip and restarts the stream's bookkeeping. When the in-process budget is
spent, the error goes up as `TransientError` and Temporal's retry policy takes
over, resuming from the heartbeated cursor.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx

from pipeworks.errors import DataError, ErrorCategory, PermanentError, TransientError
from pipeworks.metrics import PipelineMetrics, current_stage

# Waits beyond this budget (per request) are not slept through inside an activity:
# the activity fails as transient and Temporal schedules the retry after the delay.
MAX_IN_PROCESS_WAIT_SECONDS = 30.0
MALFORMED_ATTEMPTS = 3
MAX_REASON_CHARS = 300
# An upstream asking for a day's wait (or infinity) is not taken at its word.
MAX_RETRY_AFTER_SECONDS = 900.0

T = TypeVar("T")


class RateLimit(Protocol):
    async def acquire(self) -> float:
        """Returns once the next request may go."""
        ...


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
    payload = json.loads(body)
    if not isinstance(payload, dict):
        raise ValueError("body is not a JSON object")
    return payload


def parse_page(body: bytes) -> Page:
    """Raises ValueError when the body is not a page of the contract's shape."""
    payload = json.loads(body)
    if not isinstance(payload, dict) or not isinstance(payload.get("items"), list):
        raise ValueError("body is not a page: expected an object with an 'items' list")
    cursor = payload.get("next_cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise ValueError("next_cursor is neither a string nor null")
    return Page(payload["items"], cursor or None, body)


class UpstreamClient:
    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout_seconds: float = 10.0,
        max_attempts: int = 4,
        backoff_base_seconds: float = 0.2,
        backoff_max_seconds: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 64,
        metrics: PipelineMetrics | None = None,
        rate_limit: RateLimit | None = None,
    ) -> None:
        headers = {"Accept": "application/json", "User-Agent": "pipeworks"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_seconds),
            transport=transport,
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections),
        )
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base_seconds
        self._backoff_max = backoff_max_seconds
        self._random = random.Random()  # noqa: S311 - jitter, not security
        self._metrics = metrics or PipelineMetrics.disabled()
        self._rate_limit = rate_limit

    async def aclose(self) -> None:
        await self._http.aclose()

    def _backoff(self, attempt: int) -> float:
        ceiling: float = min(self._backoff_max, self._backoff_base * 2.0 ** (attempt - 1))
        return ceiling / 2 + self._random.uniform(0, ceiling / 2)

    async def get_page(
        self,
        path: str,
        params: Mapping[str, str | int],
        tally: ErrorTally,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> Page:
        return await self._fetch(path, params, parse_page, tally, sleep)

    async def get_object(self, path: str, tally: ErrorTally) -> dict[str, Any]:
        """A single entity (not a page), e.g. an association."""
        return await self._fetch(path, {}, parse_object, tally, asyncio.sleep)

    async def _fetch(
        self,
        path: str,
        params: Mapping[str, str | int],
        parse: Callable[[bytes], T],
        tally: ErrorTally,
        sleep: Callable[[float], Awaitable[None]],
    ) -> T:
        """Retried in-process for transient trouble and malformed bodies."""
        malformed = 0
        attempt = 0
        waited = 0.0
        while True:
            attempt += 1
            try:
                return parse(await self._get(path, params))
            except TransientError as err:
                tally.add(ErrorCategory.TRANSIENT)
                wait = err.retry_after if err.retry_after is not None else self._backoff(attempt)
                if (attempt >= self._max_attempts
                        or waited + wait > MAX_IN_PROCESS_WAIT_SECONDS):
                    raise
                self._metrics.retry(current_stage.get(), ErrorCategory.TRANSIENT.value)
                waited += wait
                await sleep(wait)
            except ValueError as err:
                malformed += 1
                if malformed >= MALFORMED_ATTEMPTS:
                    tally.add(ErrorCategory.DATA)
                    raise DataError(
                        f"GET {path}: malformed response {malformed} times: {err}") from None
                tally.add(ErrorCategory.TRANSIENT)
                self._metrics.retry(current_stage.get(), ErrorCategory.TRANSIENT.value)
                await sleep(self._backoff(attempt))

    async def _get(self, path: str, params: Mapping[str, str | int]) -> bytes:
        if self._rate_limit is not None:
            await self._rate_limit.acquire()
        started = time.monotonic()
        status_seen: list[int] = []  # stays empty when no response came back
        try:
            return await self._get_once(path, params, status_seen)
        finally:
            self._metrics.upstream_request(current_stage.get(),
                                           status_seen[0] if status_seen else None,
                                           time.monotonic() - started)

    async def _get_once(self, path: str, params: Mapping[str, str | int],
                        status_seen: list[int]) -> bytes:
        try:
            response = await self._http.get(path, params=dict(params))
        except httpx.TimeoutException:
            raise TransientError(f"GET {path}: timed out") from None
        except httpx.TooManyRedirects:
            raise PermanentError(f"GET {path}: too many redirects") from None
        except httpx.DecodingError as err:
            raise ValueError(f"undecodable body: {err}") from None  # malformed: retried, then data
        except httpx.HTTPError as err:
            raise TransientError(f"GET {path}: {type(err).__name__}") from None
        status = response.status_code
        status_seen.append(status)
        if status < 300:
            return response.content
        reason = f"GET {path}: {_describe(response)}"
        if status == 429:
            raise TransientError(reason, retry_after=_retry_after_seconds(response) or 1.0)
        if status >= 500 or status == 408:
            raise TransientError(reason, retry_after=_retry_after_seconds(response))
        if status == 404:
            raise PermanentError(f"{reason} (not found)")
        raise PermanentError(reason)
