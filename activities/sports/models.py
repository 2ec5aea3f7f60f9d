"""Validation of upstream items (contracts/sports-api.md, Entities).

Strict on what the contract pins down (ids and names are strings, scores are
integers, timestamps carry an offset, statuses come from a fixed set) and
tolerant of what it allows (unknown extra fields are ignored).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from pipeworks.validation import Day, Int32, Text, Timestamp
from pipeworks.validation import Key as Id


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
    home_score: Int32 | None = None
    away_score: Int32 | None = None
    updated_at: Timestamp


def key_of(item: Any) -> str | None:
    """The item's id when it has a usable one (for dedup and dead letters)."""
    key = item.get("id") if isinstance(item, dict) else None
    return key if isinstance(key, str) else None
