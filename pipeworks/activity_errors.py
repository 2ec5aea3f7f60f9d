"""Give every exception leaving an activity its error category, and record it so
that a later attempt can report what the earlier ones ran into."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from pipeworks.errors import PipelineError, SystemFailure, as_application_error
from pipeworks.heartbeat import carried_errors, record_failure


def _failure(err: Exception) -> PipelineError | None:
    if isinstance(err, PipelineError):
        return err
    if isinstance(err, asyncpg.PostgresConnectionError | asyncpg.InterfaceError | OSError):
        return SystemFailure(f"database unavailable: {type(err).__name__}: {err}")
    if isinstance(err, asyncpg.PostgresError):
        return SystemFailure(f"database error: {type(err).__name__}: {err}")
    return None


@contextmanager
def categorized_errors() -> Iterator[None]:
    try:
        yield
    except Exception as err:
        failure = _failure(err)
        if failure is None:
            raise
        errors, failed_attempts = carried_errors()
        errors = record_failure(failure.category, errors, failed_attempts)
        raise as_application_error(failure, errors) from None
