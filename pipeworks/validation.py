"""Validation pieces every pipeline shares: strict JSON-ish types and one way of
saying what is wrong with an item or an input."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
)


def require_string(value: Any) -> Any:
    """Dates and times arrive as JSON strings; a number is not a timestamp here."""
    if not isinstance(value, str):
        raise ValueError("must be a string in RFC 3339 / ISO 8601 form")
    return value


def storable_moment(value: datetime) -> datetime:
    """Postgres keeps timestamptz in UTC: a moment that has none (year 1 at +14:00)
    must dead-letter its item, not fail the whole load."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of the representable range") from None
    return value


def no_nul(value: str) -> str:
    # Postgres text cannot hold NUL; such a value is rejected, not truncated.
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


def not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


Text = Annotated[StrictStr, AfterValidator(no_nul)]
# Postgres `int`: a larger number must dead-letter its item, not fail the whole page.
Int32 = Annotated[StrictInt, Field(ge=-(2**31), le=2**31 - 1)]
Key = Annotated[StrictStr, AfterValidator(no_nul), AfterValidator(not_blank)]
Timestamp = Annotated[AwareDatetime, BeforeValidator(require_string),
                      AfterValidator(storable_moment)]
Day = Annotated[date, BeforeValidator(require_string)]


def describe(err: ValidationError, whole: str = "item") -> str:
    """'field: problem; field: problem' (`whole` names a problem of no one field)."""
    parts = []
    for problem in err.errors(include_url=False):
        where = ".".join(str(p) for p in problem["loc"]) or whole
        parts.append(f"{where}: {problem['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)
