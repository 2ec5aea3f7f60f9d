"""Give every exception leaving an activity its error category."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from pipeworks.errors import PipelineError, SystemFailure, as_application_error


@contextmanager
def categorized_errors() -> Iterator[None]:
    try:
        yield
    except PipelineError as err:
        raise as_application_error(err, {err.category.value: 1}) from None
    except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError) as err:
        failure = SystemFailure(f"database unavailable: {type(err).__name__}: {err}")
        raise as_application_error(failure, {"system": 1}) from None
    except asyncpg.PostgresError as err:
        failure = SystemFailure(f"database error: {type(err).__name__}: {err}")
        raise as_application_error(failure, {"system": 1}) from None
