"""The demo upstream's data: generated from a seed, mutable by tests, served page by page.

Games are the bulk of the data, so a competition's games are generated only when first
needed and kept in a small LRU cache; a competition is pinned in memory once a test
mutates it (its state can no longer be regenerated from the seed). Everything else is
small and held eagerly. All public methods are thread-safe: the HTTP server reads while
tests mutate.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from devstack.sports.generate import (
    REFERENCE_NOW,
    CompetitionPlan,
    World,
    build_sized_world,
    build_world,
    generate_games,
)
from devstack.sports.invalid import INVALID_KINDS, InvalidKind, Resource, make_invalid
from devstack.sports.listing import Entry, Key, Listing, encode
from devstack.sports.models import (
    GAME_STATUSES,
    Association,
    Club,
    Competition,
    Game,
    Team,
    parse_rfc3339,
    rfc3339,
)

Page = tuple[list[str], Key | None]
"""Serialised items of one page and the key to continue after (None on the last page)."""

_GAME_FIELDS = frozenset(f.name for f in dataclasses.fields(Game)) - {
    "id",
    "competition_id",
    "updated_at",
}
_TEAM_FIELDS = frozenset({"name", "club_id"})
_CLOCK_STEP = timedelta(seconds=1)


def _as_datetime(value: datetime | str) -> datetime:
    parsed = parse_rfc3339(value) if isinstance(value, str) else value
    if parsed.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return parsed


def _game_entry(key: Key, game: Game) -> Entry:
    return Entry(key, game.id, game, encode(game.to_json()), game.updated_at)


def _team_entry(key: Key, team: Team) -> Entry:
    return Entry(key, team.id, team, encode(team.to_json()), None)


def _payload_updated_at(payload: Any) -> datetime | None:
    """The updated_at of a raw payload, or None when it is absent or unparseable."""
    if not isinstance(payload, dict) or not isinstance(payload.get("updated_at"), str):
        return None
    try:
        return parse_rfc3339(payload["updated_at"])
    except ValueError:
        return None


def _updated_since_predicate(since: datetime | None) -> Callable[[Entry], bool] | None:
    if since is None:
        return None
    # Items whose updated_at cannot be read are always served: the client must see and
    # reject them rather than have the server hide its own bad data.
    return lambda entry: entry.updated_at is None or entry.updated_at >= since


class Dataset:
    """Associations, clubs, competitions, teams and games of the demo upstream."""

    def __init__(self, factory: Callable[[], World], seed: int, *, cache_size: int = 128) -> None:
        self.seed = seed
        self._factory = factory
        self._cache_size = cache_size
        self._lock = threading.RLock()
        self._load(factory())

    # ----------------------------------------------------------------- construction

    @classmethod
    def generate(
        cls,
        seed: int = 7,
        associations: int = 3,
        clubs_per_association: int = 12,
        competitions_per_association: int = 4,
        teams_per_competition: int = 10,
        games_per_competition: int | None = None,
    ) -> Dataset:
        """Several associations; ``games_per_competition=None`` means a double round robin."""
        return cls(
            lambda: build_world(
                seed,
                associations,
                clubs_per_association,
                competitions_per_association,
                teams_per_competition,
                games_per_competition,
            ),
            seed,
        )

    @classmethod
    def sized(
        cls,
        competitions: int = 100,
        teams_per_competition: int = 16,
        games_per_competition: int | None = 240,
        seed: int = 7,
    ) -> Dataset:
        """One association "A1" with many competitions, clubs created as needed (benchmarks)."""
        return cls(
            lambda: build_sized_world(
                seed, competitions, teams_per_competition, games_per_competition
            ),
            seed,
        )

    def _load(self, world: World) -> None:
        self.associations: dict[str, Association] = {a.id: a for a in world.associations}
        self.clubs: dict[str, Club] = {c.id: c for c in world.clubs}
        self.competitions: dict[str, Competition] = {
            p.competition.id: p.competition for p in world.plans
        }
        self._plans: dict[str, CompetitionPlan] = {p.competition.id: p for p in world.plans}
        self._plan_by_number: dict[int, str] = {p.number: p.competition.id for p in world.plans}
        self._association_competitions: dict[str, Listing] = {
            a: Listing() for a in self.associations
        }
        for plan in world.plans:
            listing = self._association_competitions[plan.competition.association_id]
            competition = plan.competition
            listing.insert(
                Entry(plan.number, competition.id, competition, encode(competition.to_json()), None)
            )
        self._teams: dict[str, Listing] = {
            p.competition.id: Listing(_team_entry(i, t) for i, t in enumerate(p.teams))
            for p in world.plans
        }
        self._team_competition: dict[str, str] = {
            t.id: p.competition.id for p in world.plans for t in p.teams
        }
        self._next_team_number: dict[str, int] = {
            p.competition.id: len(p.teams) for p in world.plans
        }
        self._next_game_number: dict[str, int] = {
            p.competition.id: p.game_count for p in world.plans
        }
        self._custom_game_ids: dict[str, str] = {}
        self._pinned_games: dict[str, Listing] = {}
        self._cached_games: OrderedDict[str, Listing] = OrderedDict()
        self._club_index: dict[str, set[str]] | None = None
        # Generated updated_at values never pass REFERENCE_NOW, so ticking from there keeps
        # every mutation strictly later than all existing data without a wall clock.
        self._clock = REFERENCE_NOW

    def reset(self) -> None:
        """Drop every mutation: back to what the seed generates."""
        with self._lock:
            self._load(self._factory())

    # ----------------------------------------------------------------- internals

    def _games(self, competition_id: str, *, pin: bool = False) -> Listing:
        listing = self._pinned_games.get(competition_id)
        if listing is not None:
            return listing
        listing = self._cached_games.pop(competition_id, None)
        if listing is None:
            plan = self._plans[competition_id]
            listing = Listing(
                _game_entry(index, game)
                for index, game in enumerate(generate_games(plan, self.seed))
            )
        if pin:
            self._pinned_games[competition_id] = listing
        else:
            self._cached_games[competition_id] = listing
            while len(self._cached_games) > self._cache_size:
                self._cached_games.popitem(last=False)
        return listing

    def _resource(self, resource: Resource, competition_id: str, *, pin: bool = False) -> Listing:
        if competition_id not in self._plans:
            raise KeyError(f"unknown competition {competition_id!r}")
        return (
            self._games(competition_id, pin=pin)
            if resource == "games"
            else self._teams[competition_id]
        )

    def _game_competition(self, game_id: str) -> str:
        custom = self._custom_game_ids.get(game_id)
        if custom is not None:
            return custom
        number, dash, _ = game_id[1:].partition("-")
        if game_id.startswith("G") and dash and number.isdigit():
            competition_id = self._plan_by_number.get(int(number))
            if competition_id is not None:
                return competition_id
        raise KeyError(f"unknown game {game_id!r}")

    def _tick(self, updated_at: datetime | str | None) -> datetime:
        if updated_at is None:
            self._clock += _CLOCK_STEP
            return self._clock
        stamp = _as_datetime(updated_at)
        self._clock = max(self._clock, stamp)
        return stamp

    def _originals(self, listing: Listing, item_id: str, what: str) -> list[Entry]:
        entries = [entry for entry in listing.find(item_id) if entry.item is not None]
        if not entries:
            raise KeyError(f"unknown {what} {item_id!r}")
        return entries

    def _team_ids(self, competition_id: str) -> set[str]:
        return {
            entry.item.id
            for entry in self._teams[competition_id]
            if isinstance(entry.item, Team) and not entry.duplicate
        }

    def _club_competitions(self) -> dict[str, set[str]]:
        if self._club_index is None:
            index: dict[str, set[str]] = {}
            for competition_id, listing in self._teams.items():
                for entry in listing:
                    if isinstance(entry.item, Team) and entry.item.club_id is not None:
                        index.setdefault(entry.item.club_id, set()).add(competition_id)
            self._club_index = index
        return self._club_index

    @staticmethod
    def _page(
        listing: Listing, after: Key | None, limit: int, predicate: Callable[[Entry], bool] | None
    ) -> Page:
        entries, more = listing.page(after, limit, predicate)
        return [entry.fragment for entry in entries], (entries[-1].key if more else None)

    @staticmethod
    def _served(
        listing: Listing, valid_only: bool, predicate: Callable[[Entry], bool] | None = None
    ) -> list[Any]:
        return [
            entry.payload()
            for entry in listing
            if (predicate is None or predicate(entry))
            and not (valid_only and (not entry.valid or entry.duplicate))
        ]

    # ----------------------------------------------------------------- serving

    def association_fragment(self, association_id: str) -> str:
        return encode(self.associations[association_id].to_json())

    def club_fragment(self, club_id: str) -> str:
        return encode(self.clubs[club_id].to_json())

    def page_competitions(self, association_id: str, after: Key | None, limit: int) -> Page:
        with self._lock:
            return self._page(self._association_competitions[association_id], after, limit, None)

    def page_club_competitions(self, club_id: str, after: Key | None, limit: int) -> Page:
        with self._lock:
            club = self.clubs[club_id]
            fielded = self._club_competitions().get(club_id, set())
            listing = self._association_competitions[club.association_id]
            return self._page(listing, after, limit, lambda entry: entry.item_id in fielded)

    def page_teams(self, competition_id: str, after: Key | None, limit: int) -> Page:
        with self._lock:
            return self._page(self._teams[competition_id], after, limit, None)

    def page_games(
        self,
        competition_id: str,
        after: Key | None,
        limit: int,
        updated_since: datetime | None = None,
    ) -> Page:
        with self._lock:
            if competition_id not in self._plans:
                raise KeyError(competition_id)
            listing = self._games(competition_id)
            return self._page(listing, after, limit, _updated_since_predicate(updated_since))

    # ----------------------------------------------------------------- expectations for tests

    def expected_competitions(self, association_id: str) -> list[dict[str, Any]]:
        """Every competition ``/v1/associations/{id}/competitions`` serves, in page order."""
        with self._lock:
            return self._served(self._association_competitions[association_id], False)

    def expected_club_competitions(self, club_id: str) -> list[dict[str, Any]]:
        with self._lock:
            club = self.clubs[club_id]
            fielded = self._club_competitions().get(club_id, set())
            listing = self._association_competitions[club.association_id]
            return self._served(listing, False, lambda entry: entry.item_id in fielded)

    def expected_teams(self, competition_id: str, *, valid_only: bool = False) -> list[Any]:
        """What the teams endpoint serves; ``valid_only`` drops injected and duplicate items."""
        with self._lock:
            return self._served(self._resource("teams", competition_id), valid_only)

    def expected_games(
        self,
        competition_id: str,
        *,
        updated_since: datetime | str | None = None,
        valid_only: bool = False,
    ) -> list[Any]:
        """What the games endpoint serves (with the same filter), in page order."""
        since = None if updated_since is None else _as_datetime(updated_since)
        with self._lock:
            listing = self._resource("games", competition_id)
            return self._served(listing, valid_only, _updated_since_predicate(since))

    def game(self, game_id: str) -> Game:
        with self._lock:
            listing = self._games(self._game_competition(game_id))
            item = self._originals(listing, game_id, "game")[0].item
            assert isinstance(item, Game)
            return item

    def games(self, competition_id: str) -> list[Game]:
        """The competition's current valid games, typed, without duplicates."""
        with self._lock:
            listing = self._resource("games", competition_id)
            return [
                e.item for e in listing if isinstance(e.item, Game) and e.valid and not e.duplicate
            ]

    def team(self, team_id: str) -> Team:
        with self._lock:
            listing = self._teams[self._team_competition[team_id]]
            item = self._originals(listing, team_id, "team")[0].item
            assert isinstance(item, Team)
            return item

    def teams(self, competition_id: str) -> list[Team]:
        with self._lock:
            listing = self._resource("teams", competition_id)
            return [
                e.item for e in listing if isinstance(e.item, Team) and e.valid and not e.duplicate
            ]

    def counts(self) -> dict[str, int]:
        """Sizes as served (valid items only), computed without generating any games."""
        with self._lock:
            games = 0
            for competition_id, plan in self._plans.items():
                pinned = self._pinned_games.get(competition_id)
                games += (
                    plan.game_count
                    if pinned is None
                    else sum(1 for e in pinned if e.valid and not e.duplicate)
                )
            return {
                "associations": len(self.associations),
                "clubs": len(self.clubs),
                "competitions": len(self.competitions),
                "teams": sum(len(self.teams(c)) for c in self._plans),
                "games": games,
            }

    @property
    def clock(self) -> datetime:
        """The latest updated_at handed out so far (starts at the generator's reference now)."""
        with self._lock:
            return self._clock

    # ----------------------------------------------------------------- mutations

    def remove_game(self, game_id: str) -> None:
        with self._lock:
            listing = self._games(self._game_competition(game_id), pin=True)
            if not listing.remove(game_id):
                raise KeyError(f"unknown game {game_id!r}")

    def update_game(
        self, game_id: str, *, updated_at: datetime | str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Change fields of a game; ``updated_at`` moves to the given or the next clock tick.

        Also repairs a game previously corrupted with ``inject_invalid(replace_id=...)``.
        """
        unknown = set(fields) - _GAME_FIELDS
        if unknown:
            raise TypeError(f"not updatable game fields: {sorted(unknown)}")
        if "scheduled_at" in fields:
            fields["scheduled_at"] = _as_datetime(fields["scheduled_at"])
        if "status" in fields and fields["status"] not in GAME_STATUSES:
            raise ValueError(f"unknown game status {fields['status']!r}")
        with self._lock:
            listing = self._games(self._game_competition(game_id), pin=True)
            entries = self._originals(listing, game_id, "game")
            current: Game = entries[0].item
            game = dataclasses.replace(current, **fields, updated_at=self._tick(updated_at))
            fragment = encode(game.to_json())
            for entry in entries:
                entry.item = game
                entry.fragment = fragment
                entry.updated_at = game.updated_at
                entry.valid = True
            return game.to_json()

    def add_game(
        self,
        competition_id: str,
        *,
        home_team_id: str,
        away_team_id: str,
        scheduled_at: datetime | str,
        round: str | None = None,
        venue: str | None = None,
        status: str = "scheduled",
        home_score: int | None = None,
        away_score: int | None = None,
        updated_at: datetime | str | None = None,
        game_id: str | None = None,
        position: int | None = None,
    ) -> dict[str, Any]:
        """Add a game (appended unless ``position`` says where); returns its wire form."""
        if status not in GAME_STATUSES:
            raise ValueError(f"unknown game status {status!r}")
        with self._lock:
            listing = self._resource("games", competition_id, pin=True)
            teams = self._team_ids(competition_id)
            for team_id in (home_team_id, away_team_id):
                if team_id not in teams:
                    raise ValueError(f"team {team_id!r} is not in competition {competition_id!r}")
            if game_id is None:
                self._next_game_number[competition_id] += 1
                number = self._plans[competition_id].number
                game_id = f"G{number}-{self._next_game_number[competition_id]}"
            else:
                try:
                    owner: str | None = self._game_competition(game_id)
                except KeyError:
                    owner = None
                if owner is not None and self._games(owner).find(game_id):
                    raise ValueError(f"game {game_id!r} already exists")
                self._custom_game_ids[game_id] = competition_id
            game = Game(
                id=game_id,
                competition_id=competition_id,
                round=round,
                scheduled_at=_as_datetime(scheduled_at),
                home_team_id=home_team_id,
                away_team_id=away_team_id,
                venue=venue,
                status=status,  # type: ignore[arg-type]  # checked against GAME_STATUSES above
                home_score=home_score,
                away_score=away_score,
                updated_at=self._tick(updated_at),
            )
            listing.insert(_game_entry(listing.key_for_position(position), game))
            return game.to_json()

    def add_team(
        self,
        competition_id: str,
        name: str,
        club_id: str | None = None,
        *,
        position: int | None = None,
    ) -> dict[str, Any]:
        with self._lock:
            listing = self._resource("teams", competition_id)
            if club_id is not None and club_id not in self.clubs:
                raise ValueError(f"unknown club {club_id!r}")
            self._next_team_number[competition_id] += 1
            number = self._plans[competition_id].number
            team = Team(
                f"T{number}-{self._next_team_number[competition_id]}", name, club_id, competition_id
            )
            listing.insert(_team_entry(listing.key_for_position(position), team))
            self._team_competition[team.id] = competition_id
            self._club_index = None
            return team.to_json()

    def update_team(self, team_id: str, **fields: Any) -> dict[str, Any]:
        unknown = set(fields) - _TEAM_FIELDS
        if unknown:
            raise TypeError(f"not updatable team fields: {sorted(unknown)}")
        with self._lock:
            competition_id = self._team_competition[team_id]
            entries = self._originals(self._teams[competition_id], team_id, "team")
            current: Team = entries[0].item
            team = dataclasses.replace(current, **fields)
            fragment = encode(team.to_json())
            for entry in entries:
                entry.item, entry.fragment, entry.valid = team, fragment, True
            self._club_index = None
            return team.to_json()

    def remove_team(self, team_id: str, *, cascade: bool = True) -> list[str]:
        """Remove a team; with ``cascade`` its games go too. Returns the removed game ids.

        Without ``cascade`` the remaining games reference a team that is no longer in the
        competition, which is one of the contract's invalid-item cases.
        """
        with self._lock:
            competition_id = self._team_competition.get(team_id)
            if competition_id is None or not self._teams[competition_id].remove(team_id):
                raise KeyError(f"unknown team {team_id!r}")
            del self._team_competition[team_id]
            self._club_index = None
            if not cascade:
                return []
            listing = self._games(competition_id, pin=True)
            removed = listing.remove_where(
                lambda e: (
                    isinstance(e.item, Game)
                    and team_id in (e.item.home_team_id, e.item.away_team_id)
                )
            )
            return list(dict.fromkeys(e.item_id for e in removed if e.item_id is not None))

    def inject_invalid(
        self,
        competition_id: str,
        kind: InvalidKind,
        *,
        resource: Resource = "games",
        position: int | None = None,
        replace_id: str | None = None,
        field: str | None = None,
    ) -> Any:
        """Serve an invalid item in a competition's games or teams; returns the bad payload.

        By default a new item is added at ``position`` (None = last). With ``replace_id`` an
        existing item is corrupted in place instead (``update_game`` repairs it).
        """
        if kind not in INVALID_KINDS[resource]:
            raise ValueError(f"invalid kind {kind!r} does not apply to {resource}")
        with self._lock:
            listing = self._resource(resource, competition_id, pin=True)
            if replace_id is not None:
                entries = self._originals(listing, replace_id, resource[:-1])
                template = entries[0].item.to_json()
            else:
                template = self._new_template(resource, competition_id, listing)
            payload = make_invalid(
                resource,
                kind,
                template,
                field=field,
                foreign_team_id=self._foreign_team(competition_id),
            )
            fragment = encode(payload)
            if replace_id is not None:
                for entry in entries:
                    entry.fragment, entry.valid = fragment, False
                    entry.updated_at = _payload_updated_at(payload)
                return payload
            item_id = payload.get("id") if isinstance(payload, dict) else None
            listing.insert(
                Entry(
                    listing.key_for_position(position),
                    item_id if isinstance(item_id, str) else None,
                    None,
                    fragment,
                    _payload_updated_at(payload),
                    valid=False,
                )
            )
            return payload

    def _new_template(
        self, resource: Resource, competition_id: str, listing: Listing
    ) -> dict[str, Any]:
        number = self._plans[competition_id].number
        if resource == "teams":
            self._next_team_number[competition_id] += 1
            return {
                "id": f"T{number}-{self._next_team_number[competition_id]}",
                "name": "Broken FC",
                "club_id": None,
            }
        self._next_game_number[competition_id] += 1
        team_ids = sorted(self._team_ids(competition_id)) or ["T-unknown"]
        self._tick(None)
        return {
            "id": f"G{number}-{self._next_game_number[competition_id]}",
            "round": None,
            "scheduled_at": rfc3339(self._clock + timedelta(days=7)),
            "home_team_id": team_ids[0],
            "away_team_id": team_ids[-1],
            "venue": None,
            "status": "scheduled",
            "home_score": None,
            "away_score": None,
            "updated_at": rfc3339(self._clock.astimezone(UTC)),
        }

    def _foreign_team(self, competition_id: str) -> str:
        for other_id, listing in self._teams.items():
            if other_id != competition_id:
                for entry in listing:
                    if isinstance(entry.item, Team):
                        return entry.item.id
        return "T-unknown"

    def duplicate_item(
        self,
        competition_id: str,
        item_id: str,
        *,
        resource: Resource = "games",
        position: int | None = None,
    ) -> None:
        """Serve ``item_id`` a second time at ``position`` (None = last), e.g. on a later page."""
        with self._lock:
            listing = self._resource(resource, competition_id, pin=True)
            source = [e for e in listing.find(item_id) if not e.duplicate]
            if not source:
                raise KeyError(f"unknown {resource[:-1]} {item_id!r}")
            original = source[0]
            listing.insert(
                Entry(
                    listing.key_for_position(position),
                    item_id,
                    original.item,
                    original.fragment,
                    original.updated_at,
                    valid=original.valid,
                    duplicate=True,
                )
            )

    def clear_invalid(self, competition_id: str, *, resource: Resource = "games") -> None:
        """Remove injected and duplicate items and repair corrupted ones."""
        with self._lock:
            listing = self._resource(resource, competition_id, pin=True)
            listing.remove_where(lambda e: e.item is None or e.duplicate)
            for entry in listing:
                if not entry.valid:
                    entry.fragment = encode(entry.item.to_json())
                    entry.updated_at = getattr(entry.item, "updated_at", None)
                    entry.valid = True
