"""Error categories: the one place that decides what is retried.

transient  upstream trouble that passes (5xx, 429, resets, timeouts): retry with backoff
system     our own infrastructure (database down, worker lost): retry with backoff
permanent  a request that can never succeed (404, 400, 401): fail, do not retry
data       the upstream sent something unusable (malformed pages after retries,
           cursor loops): fail that request, do not retry

Activities raise `PipelineError`s; `as_application_error` turns them into the
Temporal `ApplicationError` whose `type` names the category, so the retry policy
and the workflow read the category back without sharing Python classes.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any

from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    TimeoutError,
)


class ErrorCategory(StrEnum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    DATA = "data"
    SYSTEM = "system"

    @property
    def retryable(self) -> bool:
        return self in (ErrorCategory.TRANSIENT, ErrorCategory.SYSTEM)

    @property
    def error_type(self) -> str:
        """The ApplicationError type Temporal sees, e.g. `PermanentError`."""
        return f"{self.value.capitalize()}Error"


NON_RETRYABLE_ERROR_TYPES = [c.error_type for c in ErrorCategory if not c.retryable]
_CATEGORY_BY_TYPE = {c.error_type: c for c in ErrorCategory}


class PipelineError(Exception):
    category: ErrorCategory = ErrorCategory.SYSTEM

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class TransientError(PipelineError):
    category = ErrorCategory.TRANSIENT


class PermanentError(PipelineError):
    category = ErrorCategory.PERMANENT


class DataError(PipelineError):
    category = ErrorCategory.DATA


class SystemFailure(PipelineError):
    category = ErrorCategory.SYSTEM


def as_application_error(
    err: PipelineError, error_counts: dict[str, int] | None = None
) -> ApplicationError:
    details: dict[str, Any] = {"category": err.category.value, "errors": error_counts or {}}
    return ApplicationError(
        f"{err.category.value}: {err.message}",
        details,
        type=err.category.error_type,
        non_retryable=not err.category.retryable,
        next_retry_delay=timedelta(seconds=err.retry_after) if err.retry_after else None,
    )


def _root_cause(exc: BaseException) -> BaseException:
    while isinstance(exc, ActivityError | ChildWorkflowError) and exc.cause is not None:
        exc = exc.cause
    return exc


def category_of(exc: BaseException) -> ErrorCategory:
    """The category of a failure seen by a workflow (activity or child error)."""
    cause = _root_cause(exc)
    if isinstance(cause, ApplicationError) and cause.type in _CATEGORY_BY_TYPE:
        return _CATEGORY_BY_TYPE[cause.type]
    if isinstance(cause, TimeoutError):
        return ErrorCategory.SYSTEM
    return ErrorCategory.SYSTEM


def error_counts_of(exc: BaseException) -> dict[str, int]:
    """Errors an activity counted before it finally failed (retries it absorbed)."""
    cause = _root_cause(exc)
    if isinstance(cause, ApplicationError) and cause.details:
        first = cause.details[0]
        if isinstance(first, dict) and isinstance(first.get("errors"), dict):
            return {str(k): int(v) for k, v in first["errors"].items()}
    return {}


def failure_message(exc: BaseException) -> str:
    cause = _root_cause(exc)
    return getattr(cause, "message", None) or str(cause) or type(cause).__name__
