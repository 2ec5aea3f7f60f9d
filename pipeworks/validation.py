"""Validation pieces every pipeline shares: strict JSON-ish types and one way of
saying what is wrong with an item or an input."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BeforeValidator,
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
)


def require_string(value: Any) -> Any:
    """Dates and times arrive as JSON strings; a number is not a timestamp here."""
    if not isinstance(value, str):
        raise ValueError("must be a string in RFC 3339 / ISO 8601 form")
    return value


# Checked inside pydantic-core (patterns, bounds), not by Python functions: a page of
# items validates twice as fast without a Python call per value. `describe` words the
# pattern errors for people.
NO_NUL = r"^[^\x00]*$"  # Postgres text cannot hold NUL: rejected, not truncated
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"  # and something besides white space
_PATTERN_MESSAGES = {
    NO_NUL: "contains a NUL character",
    NOT_BLANK: "must not be empty or blank, nor contain a NUL character",
}
# Postgres keeps timestamptz in UTC: a moment that has none (year 1 at +14:00) must
# dead-letter its item, not fail the whole load.
EARLIEST = datetime(1, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)

Text = Annotated[StrictStr, StringConstraints(pattern=NO_NUL)]
# Postgres `int`: a larger number must dead-letter its item, not fail the whole page.
Int32 = Annotated[StrictInt, Field(ge=-(2**31), le=2**31 - 1)]
Key = Annotated[StrictStr, StringConstraints(pattern=NOT_BLANK)]
# The bounds before the string check: metadata after a Python validator would be
# applied by Python too (6x slower per value).
Timestamp = Annotated[AwareDatetime, Field(ge=EARLIEST, le=LATEST),
                      BeforeValidator(require_string)]
Day = Annotated[date, BeforeValidator(require_string)]


def describe(err: ValidationError, whole: str = "item") -> str:
    """'field: problem; field: problem' (`whole` names a problem of no one field)."""
    parts = []
    for problem in err.errors(include_url=False):
        where = ".".join(str(p) for p in problem["loc"]) or whole
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "string_pattern_mismatch":
            pattern = str(problem.get("ctx", {}).get("pattern"))
            message = _PATTERN_MESSAGES.get(pattern, message)
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
