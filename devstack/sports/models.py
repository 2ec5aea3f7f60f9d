"""Entities of the sports API (contract v1) and their wire form."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, get_args

CompetitionStatus = Literal["upcoming", "active", "completed"]
GameStatus = Literal["scheduled", "live", "final", "postponed", "cancelled"]
GAME_STATUSES: frozenset[str] = frozenset(get_args(GameStatus))

JSONDict = dict[str, Any]


def rfc3339(value: datetime) -> str:
    """Render an aware datetime; UTC is written as ``Z`` so both offset spellings appear."""
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp; naive values are rejected because the contract needs an offset.

    A ``+`` that arrived as a space (an unencoded query string) is tolerated.
    """
    candidate = text.strip()
    if len(candidate) > 19 and candidate[-6] == " ":
        candidate = candidate[:-6] + "+" + candidate[-5:]
    parsed = datetime.fromisoformat(candidate)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without offset: {text!r}")
    return parsed


@dataclass(frozen=True, slots=True)
class Association:
    id: str
    name: str
    country: str | None

    def to_json(self) -> JSONDict:
        return {"id": self.id, "name": self.name, "country": self.country}


@dataclass(frozen=True, slots=True)
class Club:
    id: str
    name: str
    association_id: str

    def to_json(self) -> JSONDict:
        return {"id": self.id, "name": self.name, "association_id": self.association_id}


@dataclass(frozen=True, slots=True)
class Competition:
    id: str
    name: str
    season: str
    starts_on: date
    ends_on: date | None
    status: CompetitionStatus
    association_id: str

    def to_json(self) -> JSONDict:
        return {
            "id": self.id,
            "name": self.name,
            "season": self.season,
            "starts_on": self.starts_on.isoformat(),
            "ends_on": self.ends_on.isoformat() if self.ends_on else None,
            "status": self.status,
        }


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    name: str
    club_id: str | None
    competition_id: str

    def to_json(self) -> JSONDict:
        return {"id": self.id, "name": self.name, "club_id": self.club_id}


@dataclass(frozen=True, slots=True)
class Game:
    id: str
    competition_id: str
    round: str | None
    scheduled_at: datetime
    home_team_id: str
    away_team_id: str
    venue: str | None
    status: GameStatus
    home_score: int | None
    away_score: int | None
    updated_at: datetime
    # Not in the contract: served so that clients prove they ignore unknown fields.
    attendance: int | None = None

    def to_json(self) -> JSONDict:
        data: JSONDict = {
            "id": self.id,
            "round": self.round,
            "scheduled_at": rfc3339(self.scheduled_at),
            "home_team_id": self.home_team_id,
            "away_team_id": self.away_team_id,
            "venue": self.venue,
            "status": self.status,
            "home_score": self.home_score,
            "away_score": self.away_score,
            "updated_at": rfc3339(self.updated_at),
        }
        if self.attendance is not None:
            data["attendance"] = self.attendance
        return data


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)
