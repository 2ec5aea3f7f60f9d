"""Validation of upstream items (contracts/sports-api.md, Entities).

Strict on what the contract pins down (ids and names are strings, scores are
integers, timestamps carry an offset, statuses come from a fixed set) and
tolerant of what it allows (unknown extra fields are ignored).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StrictInt,
    StrictStr,
    ValidationError,
)


def _no_nul(value: str) -> str:
    # Postgres text cannot hold NUL; such an item is dead-lettered, not truncated.
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


def _require_string(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be a string in RFC 3339 / ISO 8601 form")
    return value


Text = Annotated[StrictStr, AfterValidator(_no_nul)]
def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


Id = Annotated[StrictStr, AfterValidator(_no_nul), AfterValidator(_not_blank)]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_require_string)]
Day = Annotated[date, BeforeValidator(_require_string)]


class Item(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Competition(Item):
    id: Id
    name: Text
    season: Text
    starts_on: Day
    ends_on: Day | None = None
    status: Literal["upcoming", "active", "completed"]


class Team(Item):
    id: Id
    name: Text
    club_id: Id | None = None


class Game(Item):
    id: Id
    round: Text | None = None
    scheduled_at: Timestamp
    home_team_id: Id
    away_team_id: Id
    venue: Text | None = None
    status: Literal["scheduled", "live", "final", "postponed", "cancelled"]
    home_score: StrictInt | None = None
    away_score: StrictInt | None = None
    updated_at: Timestamp


def describe_errors(err: ValidationError) -> str:
    """'field: problem; field: problem' — the dead letter's reason."""
    parts = []
    for problem in err.errors(include_url=False):
        field = ".".join(str(p) for p in problem["loc"]) or "item"
        message = problem["msg"].removeprefix("Value error, ")
        parts.append(f"{field}: {message}")
    return "; ".join(parts)


def key_of(item: Any) -> str | None:
    """The item's id when it has a usable one (for dedup and dead letters)."""
    key = item.get("id") if isinstance(item, dict) else None
    return key if isinstance(key, str) else None


ENTITY_MODELS: dict[str, type[Item]] = {
    "competitions": Competition, "teams": Team, "games": Game,
}
