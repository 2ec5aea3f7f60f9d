"""How each sports entity is judged and written (see pipeworks.staging.Stager)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from activities.sports.models import Competition, Game, Item, Team, key_of
from pipeworks.db import Connection
from pipeworks.merge import TableSpec
from pipeworks.staging import StageOutcome, Verdict, envelope_items
from pipeworks.validation import describe

COMPETITIONS = TableSpec(
    "sports.competitions", "id", ("id", "name", "season", "starts_on", "ends_on", "status"))
TEAMS = TableSpec("sports.teams", "id", ("id", "competition_id", "name", "club_id"))
GAMES = TableSpec(
    "sports.games", "id",
    ("id", "competition_id", "round", "scheduled_at", "home_team_id", "away_team_id", "venue",
     "status", "home_score", "away_score", "source_updated_at"))

# The order a rollback undoes them: the reverse of the order a sync writes them.
UNDO_ORDER = (GAMES, TEAMS, COMPETITIONS)


def _invalid(item: Any, err: ValidationError) -> Verdict:
    return Verdict(key=key_of(item), invalid_reason=describe(err))


@cache
def _page_of(model: type[Item]) -> type[BaseModel]:
    """A whole landed page body (`{"items": [...], ...}`), validated in one call."""
    return create_model(f"{model.__name__}Page", __config__=ConfigDict(extra="ignore"),
                        items=(list[model], ...))  # type: ignore[valid-type]


def _judge_page(body: bytes, model: type[Item], verdict: Callable[[Any], Verdict]
                ) -> list[Verdict] | None:
    """The fast path: one pydantic call parses and validates every item of the page.
    None when anything is invalid (also a verdict's own check): the caller then judges
    item by item, which names each invalid item and keeps its payload."""
    try:
        items = _page_of(model).model_validate_json(body).items  # type: ignore[attr-defined]
    except ValidationError:
        return None
    verdicts = [verdict(item) for item in items]
    if any(v.invalid_reason is not None for v in verdicts):
        return None
    return verdicts


class CompetitionStager:
    entity = "competitions"
    spec = COMPETITIONS
    scope_per_row = True  # isolating a competition restores its own row too
    label_index: int | None = 1  # the name
    items_of = staticmethod(envelope_items)  # sports-api.md pages: {"items": [...]}

    async def prepare(self, conn: Connection) -> None:
        return None


    async def finish(self, conn: Connection, outcome: StageOutcome) -> None:

        return None

    def judge(self, item: Any) -> Verdict:
        try:
            c = Competition.model_validate(item)
        except ValidationError as err:
            return _invalid(item, err)
        return self._verdict(c)

    def judge_page(self, body: bytes) -> list[Verdict] | None:
        return _judge_page(body, Competition, self._verdict)

    def _verdict(self, c: Competition) -> Verdict:
        return Verdict(c.id, (c.id, c.name, c.season, c.starts_on, c.ends_on, c.status))

    def delete_scope(self) -> tuple[str, Sequence[Any]] | None:
        # Competitions are not owned by one organisation in our tables, so a
        # sync never deletes one; their teams and games are deleted per competition.
        return None


class TeamStager:
    entity = "teams"
    spec = TEAMS
    scope_per_row = False
    label_index: int | None = None
    items_of = staticmethod(envelope_items)

    def __init__(self, competition_id: str) -> None:
        self.competition_id = competition_id

    async def prepare(self, conn: Connection) -> None:
        return None


    async def finish(self, conn: Connection, outcome: StageOutcome) -> None:

        return None

    def judge(self, item: Any) -> Verdict:
        try:
            t = Team.model_validate(item)
        except ValidationError as err:
            return _invalid(item, err)
        return self._verdict(t)

    def judge_page(self, body: bytes) -> list[Verdict] | None:
        return _judge_page(body, Team, self._verdict)

    def _verdict(self, t: Team) -> Verdict:
        return Verdict(t.id, (t.id, self.competition_id, t.name, t.club_id))

    def delete_scope(self) -> tuple[str, Sequence[Any]] | None:
        return "t.competition_id = $3", (self.competition_id,)


class GameStager:
    """Games reference teams of their competition; club mode keeps only the
    games in which one of the club's teams plays."""

    entity = "games"
    spec = GAMES
    scope_per_row = False
    label_index: int | None = None
    items_of = staticmethod(envelope_items)

    def __init__(self, competition_id: str, club_id: str | None) -> None:
        self.competition_id = competition_id
        self.club_id = club_id
        self._team_ids: frozenset[str] = frozenset()
        self._club_team_ids: frozenset[str] = frozenset()

    async def prepare(self, conn: Connection) -> None:
        rows = await conn.fetch(
            "SELECT id, club_id FROM sports.teams WHERE competition_id = $1", self.competition_id)
        self._team_ids = frozenset(r["id"] for r in rows)
        if self.club_id is not None:
            self._club_team_ids = frozenset(r["id"] for r in rows if r["club_id"] == self.club_id)

    async def finish(self, conn: Connection, outcome: StageOutcome) -> None:
        return None

    def judge(self, item: Any) -> Verdict:
        try:
            g = Game.model_validate(item)
        except ValidationError as err:
            return _invalid(item, err)
        return self._verdict(g)

    def judge_page(self, body: bytes) -> list[Verdict] | None:
        return _judge_page(body, Game, self._verdict)

    def _verdict(self, g: Game) -> Verdict:
        if g.home_team_id not in self._team_ids or g.away_team_id not in self._team_ids:
            side = "home_team_id" if g.home_team_id not in self._team_ids else "away_team_id"
            return Verdict(g.id, invalid_reason=(
                f"{side}: team {getattr(g, side)!r} is not in competition"
                f" {self.competition_id!r}"))
        if self.club_id is not None and not (
            {g.home_team_id, g.away_team_id} & self._club_team_ids
        ):
            return Verdict(g.id)
        return Verdict(g.id, (
            g.id, self.competition_id, g.round, g.scheduled_at, g.home_team_id, g.away_team_id,
            g.venue, g.status, g.home_score, g.away_score, g.updated_at))

    def delete_scope(self) -> tuple[str, Sequence[Any]] | None:
        if self.club_id is None:
            return "t.competition_id = $3", (self.competition_id,)
        # A club sync owns only its teams' games (the rest may be another sync's),
        # plus games of teams no longer in the competition: nobody can keep those.
        return ("t.competition_id = $3 AND (t.home_team_id = ANY($4::text[])"
                " OR t.away_team_id = ANY($4::text[])"
                " OR t.home_team_id <> ALL($5::text[]) OR t.away_team_id <> ALL($5::text[]))",
                (self.competition_id, sorted(self._club_team_ids), sorted(self._team_ids)))
