"""Give every exception leaving an activity its error category, and record it so
that a later attempt can report what the earlier ones ran into."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from pipeworks.errors import ErrorCategory, PipelineError, SystemFailure, as_application_error
from pipeworks.heartbeat import carried_errors, record_failure
from pipeworks.http import ErrorTally


def as_pipeline_error(err: Exception) -> PipelineError | None:
    """The category of an exception from our own code, the database or the OS."""
    if isinstance(err, PipelineError):
        return err
    if isinstance(err, asyncpg.PostgresConnectionError | asyncpg.InterfaceError | OSError):
        return SystemFailure(f"database unavailable: {type(err).__name__}: {err}")
    if isinstance(err, asyncpg.PostgresError):
        return SystemFailure(f"database error: {type(err).__name__}: {err}")
    return None


@contextmanager
def categorized_errors(tally: ErrorTally | None = None) -> Iterator[None]:
    """`tally`: errors this attempt absorbed already (in-activity HTTP retries)."""
    try:
        yield
    except Exception as err:
        failure = as_pipeline_error(err)
        if failure is None:
            raise
        errors, failed_attempts = carried_errors()
        if tally is not None:
            errors = dict(tally.counts)  # seeded from carried_errors by its owner
        # The HTTP client tallies the transient and data errors it raises itself.
        counted = tally is not None and failure.category in (
            ErrorCategory.TRANSIENT, ErrorCategory.DATA)
        errors = record_failure(failure.category, errors, failed_attempts,
                                already_counted=counted)
        raise as_application_error(failure, errors) from None
