"""Deterministic generation of the demo world from a seed.

The structure (associations, clubs, competitions, teams) is generated eagerly from one
``random.Random(seed)``. Games are generated per competition on demand, each competition
from its own RNG seeded with ``(seed, competition id)``: the result does not depend on
which competitions were generated before, so a million games never need to sit in memory
at once. Nothing reads the wall clock; "now" is a fixed reference instant.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone

from devstack.sports.models import (
    Association,
    Club,
    Competition,
    CompetitionStatus,
    Game,
    GameStatus,
    Team,
)
from devstack.sports.names import (
    ASSOCIATIONS,
    CLUB_NAME_PATTERNS,
    CLUBLESS_TEAM_NAMES,
    AssociationTemplate,
    CompetitionKind,
    CompetitionTemplate,
)

# The instant the generated world considers "now": games before it are mostly played.
REFERENCE_NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
_CURRENT_SPLIT_SEASON_YEAR = 2024  # 2024/25
_CURRENT_CALENDAR_SEASON_YEAR = 2025

_CLUBLESS_SHARE = 0.04
_VENUE_MISSING_SHARE = 0.04
_POSTPONED_SHARE = 0.02
_CANCELLED_SHARE = 0.005
_FUTURE_POSTPONED_SHARE = 0.01
_CORRECTION_SHARE = 0.05
_KICKOFF_MINUTES = tuple(
    h * 60 + m
    for h, m in ((13, 30), (15, 0), (15, 30), (17, 30), (18, 0), (19, 0), (20, 0), (20, 45))
)
_GAME_LENGTH = timedelta(minutes=110)


@dataclass(frozen=True, slots=True)
class CompetitionPlan:
    """Everything needed to (re)generate a competition's games without the rest of the world."""

    competition: Competition
    number: int
    kind: CompetitionKind
    tz: timezone
    teams: tuple[Team, ...]
    game_count: int
    venues: dict[str, str] = field(default_factory=dict)  # club id -> home venue


@dataclass(slots=True)
class World:
    associations: list[Association]
    clubs: list[Club]
    plans: list[CompetitionPlan]


def double_round_robin_size(teams: int) -> int:
    return teams * (teams - 1)


def _split_season(offset: int) -> tuple[str, date, date]:
    year = _CURRENT_SPLIT_SEASON_YEAR + offset
    return f"{year}/{(year + 1) % 100:02d}", date(year, 8, 9), date(year + 1, 5, 25)


def _calendar_season(offset: int) -> tuple[str, date, date]:
    year = _CURRENT_CALENDAR_SEASON_YEAR + offset
    return str(year), date(year, 2, 8), date(year, 11, 29)


def _season_offset(index: int, templates: int) -> int:
    # Current seasons first, then one finished and one upcoming (so even the four
    # competitions of a demo association show every competition status), then history.
    head = (0, 0, -1, 1, 0)
    if index < len(head):
        return head[index]
    return -1 - ((index - len(head)) // max(templates, 1)) % 20


def _competition_status(starts_on: date, ends_on: date | None) -> CompetitionStatus:
    today = REFERENCE_NOW.date()
    if starts_on > today:
        return "upcoming"
    if ends_on is not None and ends_on < today:
        return "completed"
    return "active"


class _ClubNamer:
    """Hands out unique club names: pool names first, then synthesised ones."""

    def __init__(self, rng: random.Random) -> None:
        cities = sorted({city for template in ASSOCIATIONS for _, city in template.clubs})
        combos = [pattern.format(city=city) for pattern in CLUB_NAME_PATTERNS for city in cities]
        rng.shuffle(combos)
        city_of = {
            pattern.format(city=city): city for pattern in CLUB_NAME_PATTERNS for city in cities
        }
        self._synthetic = [(name, city_of[name]) for name in combos]
        self._used: set[str] = set()
        self._next_synthetic = 0
        self._round = 1

    def take(self, pool: Sequence[tuple[str, str]], count: int) -> list[tuple[str, str]]:
        chosen: list[tuple[str, str]] = []
        for name, city in pool:
            if len(chosen) == count:
                return chosen
            if name not in self._used:
                self._used.add(name)
                chosen.append((name, city))
        while len(chosen) < count:
            name, city = self._synthetic[self._next_synthetic]
            self._next_synthetic += 1
            if self._next_synthetic == len(self._synthetic):
                self._next_synthetic = 0
                self._round += 1
            if self._round > 1:
                name = f"{name} {self._round}"
            if name not in self._used:
                self._used.add(name)
                chosen.append((name, city))
        return chosen


def _make_teams(
    rng: random.Random,
    competition_id: str,
    count: int,
    clubs: Sequence[Club],
    suffix: str,
) -> tuple[Team, ...]:
    picks = rng.sample(list(clubs), min(count, len(clubs)))
    teams: list[Team] = []
    for index in range(count):
        team_id = f"T{competition_id[1:]}-{index + 1}"
        if not picks or rng.random() < _CLUBLESS_SHARE:
            name = rng.choice(CLUBLESS_TEAM_NAMES) + suffix
            teams.append(Team(team_id, name, None, competition_id))
            continue
        club = picks[index % len(picks)]
        # A club short of rivals fields a reserve side rather than leaving a slot empty.
        reserve = " II" * (index // len(picks))
        teams.append(Team(team_id, club.name + suffix + reserve, club.id, competition_id))
    return tuple(teams)


def _plan_competition(
    rng: random.Random,
    number: int,
    index_in_association: int,
    association: Association,
    template: AssociationTemplate,
    comp_template: CompetitionTemplate,
    template_count: int,
    used_names: set[str],
    clubs: Sequence[Club],
    venues: dict[str, str],
    teams_per_competition: int,
    games_per_competition: int | None,
) -> CompetitionPlan:
    offset = _season_offset(index_in_association, template_count)
    season_fn = _calendar_season if template.calendar_year else _split_season
    season, starts_on, ends_on = season_fn(offset)
    starts_on += timedelta(days=rng.randint(0, 13))
    ends_on -= timedelta(days=rng.randint(0, 13))
    open_ended = comp_template.kind == "friendly" and offset >= 0
    end: date | None = None if open_ended else ends_on
    name = f"{comp_template.name} {season}"
    group = 2
    while name in used_names:
        name = f"{comp_template.name} {season}, Group {group}"
        group += 1
    used_names.add(name)
    competition_id = f"K{number}"
    competition = Competition(
        id=competition_id,
        name=name,
        season=season,
        starts_on=starts_on,
        ends_on=end,
        status=_competition_status(starts_on, end),
        association_id=association.id,
    )
    teams = _make_teams(
        rng, competition_id, teams_per_competition, clubs, comp_template.team_suffix
    )
    game_count = (
        double_round_robin_size(len(teams))
        if games_per_competition is None
        else games_per_competition
    )
    if game_count > 0 and len(teams) < 2:
        raise ValueError("a competition with games needs at least two teams")
    return CompetitionPlan(
        competition=competition,
        number=number,
        kind=comp_template.kind,
        tz=timezone(timedelta(minutes=template.utc_offset_minutes)),
        teams=teams,
        game_count=game_count,
        venues=venues,
    )


def build_world(
    seed: int,
    associations: int,
    clubs_per_association: int,
    competitions_per_association: int,
    teams_per_competition: int,
    games_per_competition: int | None,
) -> World:
    """The standard demo shape: several associations, each with its own clubs and competitions."""
    if min(associations, clubs_per_association, competitions_per_association) < 0:
        raise ValueError("sizes must not be negative")
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not secret
    namer = _ClubNamer(rng)
    world = World([], [], [])
    number = 0
    for a_index in range(associations):
        template = ASSOCIATIONS[a_index % len(ASSOCIATIONS)]
        lap = a_index // len(ASSOCIATIONS)
        association = Association(
            id=f"A{a_index + 1}",
            name=template.name if lap == 0 else f"{template.name} ({lap + 1})",
            country=template.country,
        )
        world.associations.append(association)
        clubs, venues = _make_clubs(namer, association, template, clubs_per_association)
        world.clubs.extend(clubs)
        used_names: set[str] = set()
        for c_index in range(competitions_per_association):
            number += 1
            comp_template = template.competitions[c_index % len(template.competitions)]
            world.plans.append(
                _plan_competition(
                    rng,
                    number,
                    c_index,
                    association,
                    template,
                    comp_template,
                    len(template.competitions),
                    used_names,
                    clubs,
                    venues,
                    teams_per_competition,
                    games_per_competition,
                )
            )
    return world


def build_sized_world(
    seed: int,
    competitions: int,
    teams_per_competition: int,
    games_per_competition: int | None,
) -> World:
    """One association "A1" holding many competitions, for benchmarks."""
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not secret
    namer = _ClubNamer(rng)
    template = ASSOCIATIONS[0]
    association = Association(id="A1", name=template.name, country=template.country)
    # About four teams per club, so clubs span several competitions as in real life.
    club_count = max(teams_per_competition, math.ceil(competitions * teams_per_competition / 4))
    every_pool = [club for t in ASSOCIATIONS for club in t.clubs]
    clubs, venues = _make_clubs(namer, association, template, club_count, pool=every_pool)
    comp_templates = [c for t in ASSOCIATIONS for c in t.competitions]
    used_names: set[str] = set()
    plans = [
        _plan_competition(
            rng,
            index + 1,
            index,
            association,
            template,
            comp_templates[index % len(comp_templates)],
            len(comp_templates),
            used_names,
            clubs,
            venues,
            teams_per_competition,
            games_per_competition,
        )
        for index in range(competitions)
    ]
    return World([association], clubs, plans)


def _make_clubs(
    namer: _ClubNamer,
    association: Association,
    template: AssociationTemplate,
    count: int,
    pool: Sequence[tuple[str, str]] | None = None,
) -> tuple[list[Club], dict[str, str]]:
    clubs: list[Club] = []
    venues: dict[str, str] = {}
    for index, (name, city) in enumerate(namer.take(pool or template.clubs, count)):
        club = Club(
            id=f"C{association.id[1:]}-{index + 1}", name=name, association_id=association.id
        )
        clubs.append(club)
        venues[club.id] = template.venue_pattern.format(city=city)
    return clubs, venues


def _round_robin(teams: int) -> list[list[tuple[int, int]]]:
    """One leg by the circle method; home and away alternate so no side is always at home."""
    slots = list(range(teams)) + ([-1] if teams % 2 else [])
    size = len(slots)
    rounds: list[list[tuple[int, int]]] = []
    for round_index in range(size - 1):
        pairs: list[tuple[int, int]] = []
        for i in range(size // 2):
            home, away = slots[i], slots[size - 1 - i]
            if home < 0 or away < 0:
                continue
            if (i + round_index) % 2:
                home, away = away, home
            pairs.append((home, away))
        rounds.append(pairs)
        slots = [slots[0], slots[-1], *slots[1:-1]]
    return rounds


def fixtures(teams: int, count: int) -> Iterator[tuple[int, int, int]]:
    """(round number, home index, away index), legs repeating with sides swapped."""
    if count <= 0 or teams < 2:
        return
    leg = _round_robin(teams)
    produced = 0
    round_number = 0
    while True:
        swap = (round_number // len(leg)) % 2 == 1
        for pairs in leg:
            round_number += 1
            for home, away in pairs:
                yield (round_number, away, home) if swap else (round_number, home, away)
                produced += 1
                if produced == count:
                    return


def _poisson(rng: random.Random, mean: float) -> int:
    limit = math.exp(-mean)
    goals = 0
    product = rng.random()
    while product > limit:
        goals += 1
        product *= rng.random()
    return goals


def _round_label(kind: CompetitionKind, round_number: int) -> str | None:
    if kind == "league":
        return f"Matchday {round_number}"
    if kind == "cup":
        return f"Group Stage, Matchday {round_number}"
    return None


def generate_games(plan: CompetitionPlan, seed: int) -> Iterator[Game]:
    """The competition's games in a stable order; identical output for the same seed."""
    if plan.game_count <= 0:
        return
    rng = random.Random(f"{seed}:games:{plan.competition.id}")  # noqa: S311
    competition = plan.competition
    teams = plan.teams
    per_round = max(len(teams) // 2, 1)
    rounds = math.ceil(plan.game_count / per_round)
    season_end = competition.ends_on or competition.starts_on + timedelta(days=120)
    span_days = max((season_end - competition.starts_on).days, 1)
    start = datetime.combine(competition.starts_on, datetime.min.time(), plan.tz)
    # Fixture lists are published a few weeks before the season starts.
    published = start.astimezone(UTC) - timedelta(days=21)
    now = REFERENCE_NOW
    prefix = f"G{plan.number}-"
    for index, (round_number, home_i, away_i) in enumerate(fixtures(len(teams), plan.game_count)):
        home, away = teams[home_i], teams[away_i]
        # random() arithmetic instead of choice()/randint(): several times faster, and this
        # loop runs a million times for the largest benchmark.
        day = (round_number - 1) * span_days // rounds + (rng.random() < 0.34)
        kickoff = start + timedelta(days=day, minutes=_KICKOFF_MINUTES[int(rng.random() * 8)])
        venue = plan.venues.get(home.club_id) if home.club_id else None
        if rng.random() < _VENUE_MISSING_SHARE:
            venue = None
        draw = rng.random()
        status: GameStatus
        home_score: int | None = None
        away_score: int | None = None
        attendance: int | None = None
        if kickoff > now:
            status = "postponed" if draw < _FUTURE_POSTPONED_SHARE else "scheduled"
            updated = published + timedelta(seconds=int(rng.random() * 172_800))
        elif now - kickoff < _GAME_LENGTH:
            status = "live"
            home_score, away_score = _poisson(rng, 0.8), _poisson(rng, 0.6)
            updated = now - timedelta(seconds=1 + int(rng.random() * 300))
        elif draw < _POSTPONED_SHARE:
            status = "postponed"
            updated = kickoff - timedelta(hours=2 + int(rng.random() * 70))
        elif draw < _POSTPONED_SHARE + _CANCELLED_SHARE:
            status = "cancelled"
            updated = kickoff - timedelta(hours=2 + int(rng.random() * 70))
        else:
            status = "final"
            home_score, away_score = _poisson(rng, 1.5), _poisson(rng, 1.15)
            if venue is not None:
                attendance = 800 + int(rng.random() * 44_200)
            minutes = 110 + int(rng.random() * 40)
            if rng.random() < _CORRECTION_SHARE:
                minutes += 1440 * (1 + int(rng.random() * 5))
            delay = timedelta(minutes=minutes)
            updated = min(kickoff + delay, now)
        yield Game(
            id=f"{prefix}{index + 1}",
            competition_id=competition.id,
            round=_round_label(plan.kind, round_number),
            scheduled_at=kickoff,
            home_team_id=home.id,
            away_team_id=away.id,
            venue=venue,
            status=status,
            home_score=home_score,
            away_score=away_score,
            # Never after "now", so the dataset's mutation clock (which starts there) is
            # later than every generated timestamp.
            updated_at=min(updated, now).astimezone(UTC),
            attendance=attendance,
        )
