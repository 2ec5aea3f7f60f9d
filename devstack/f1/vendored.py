"""The vendored data (devstack/f1/data/*.json, written by data/vendor.py) as typed values.

Loaded once per process: the files are small and never change at run time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"

# f1db's non-numeric positions: not classified (DNF, DNS, DSQ, NC) or a pit-lane start (PL).
Position = int | str


@dataclass(frozen=True, slots=True)
class Circuit:
    id: str
    name: str
    full_name: str
    place: str
    type: str
    country: str
    ioc: str
    alpha3: str


@dataclass(frozen=True, slots=True)
class Entrant:
    number: int
    driver_id: str
    first_name: str
    last_name: str
    acronym: str
    team_id: str


@dataclass(frozen=True, slots=True)
class RaceResult:
    position: Position
    number: int
    laps: int | None
    time_s: float | None
    gap_s: float | None
    laps_down: int | None
    penalty_s: float | None
    points: float | None
    grid: Position | None
    retired: str | None


@dataclass(frozen=True, slots=True)
class QualifyingResult:
    position: Position
    number: int
    q1_s: float | None
    q2_s: float | None
    q3_s: float | None
    laps: int | None

    @property
    def best_s(self) -> float | None:
        times = [t for t in (self.q1_s, self.q2_s, self.q3_s) if t is not None]
        return min(times) if times else None


@dataclass(frozen=True, slots=True)
class PracticeResult:
    position: Position
    number: int
    time_s: float | None
    laps: int | None


@dataclass(frozen=True, slots=True)
class GridSlot:
    position: Position
    number: int
    time_s: float | None


@dataclass(frozen=True, slots=True)
class PitStop:
    number: int
    stop: int
    lap: int
    time_s: float | None


@dataclass(frozen=True, slots=True)
class SafetyCarPeriod:
    deployed: int
    retreated: int | None


@dataclass(frozen=True, slots=True)
class Round:
    round: int
    folder: str
    grand_prix: str
    name: str
    official_name: str
    circuit: Circuit
    laps: int
    sprint_laps: int | None
    schedule: dict[str, datetime]
    entrants: dict[int, Entrant]
    race_results: tuple[RaceResult, ...]
    sprint_results: tuple[RaceResult, ...]
    qualifying: tuple[QualifyingResult, ...]
    sprint_qualifying: tuple[QualifyingResult, ...]
    practice: dict[str, tuple[PracticeResult, ...]]
    grid: tuple[GridSlot, ...]
    sprint_grid: tuple[GridSlot, ...]
    pit_stops: tuple[PitStop, ...]
    safety_cars: tuple[SafetyCarPeriod, ...]
    red_flag_laps: tuple[int, ...]
    vsc_laps: tuple[int, ...]

    @property
    def is_sprint_weekend(self) -> bool:
        return "sprint" in self.schedule


@dataclass(frozen=True, slots=True)
class RealStint:
    number: int
    compound: str
    lap_start: int
    lap_end: int
    # FastF1's TyreLife on the stint's first lap: laps on the set including that lap.
    life_start: int


@dataclass(frozen=True, slots=True)
class RealLap:
    number: int
    time_s: float | None
    s1: float | None
    s2: float | None
    s3: float | None
    position: int | None
    # FastF1 track-status digits seen during the lap: 1 clear, 2 yellow, 4 SC, 5 red,
    # 6 VSC deployed, 7 VSC ending.
    status: str


@dataclass(frozen=True, slots=True)
class RealDriver:
    acronym: str
    number: int
    team: str
    stints: tuple[RealStint, ...]
    laps: tuple[RealLap, ...]


def _load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def _rows(table: dict[str, Any] | None) -> list[dict[str, Any]]:
    if table is None:
        return []
    columns = table["columns"]
    return [dict(zip(columns, row, strict=True)) for row in table["rows"]]


def _seconds(milliseconds: int | None) -> float | None:
    return None if milliseconds is None else milliseconds / 1000


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@cache
def season() -> tuple[Round, ...]:
    """The 24 rounds of 2024, in calendar order."""
    data = _load("season-2024.json")
    safety = _load("safety-2024.json")
    drivers: dict[str, dict[str, Any]] = data["drivers"]
    rounds = []
    for entry in data["rounds"]:
        key = str(entry["round"])
        circuit_id = entry["circuit"]
        entrants = {
            int(number): Entrant(int(number), driver_id, drivers[driver_id]["first_name"],
                                 drivers[driver_id]["last_name"], drivers[driver_id]["acronym"],
                                 team_id)
            for number, (driver_id, team_id) in entry["entrants"].items()
        }
        rounds.append(Round(
            round=entry["round"],
            folder=entry["folder"],
            grand_prix=entry["grand_prix"],
            name=entry["name"],
            official_name=entry["official_name"],
            circuit=Circuit(id=circuit_id, **data["circuits"][circuit_id]),
            laps=entry["laps"],
            sprint_laps=entry["sprint_laps"],
            schedule={name: _utc(text) for name, text in entry["schedule"].items()},
            entrants=entrants,
            race_results=tuple(RaceResult(**row) for row in _rows(entry.get("race_results"))),
            sprint_results=tuple(RaceResult(**row)
                                 for row in _rows(entry.get("sprint_results"))),
            qualifying=tuple(QualifyingResult(**row) for row in _rows(entry.get("qualifying"))),
            sprint_qualifying=tuple(QualifyingResult(**row)
                                    for row in _rows(entry.get("sprint_qualifying"))),
            practice={name: tuple(PracticeResult(**row) for row in _rows(entry[name]))
                      for name in ("fp1", "fp2", "fp3") if name in entry},
            grid=tuple(GridSlot(**row) for row in _rows(entry.get("grid"))),
            sprint_grid=tuple(GridSlot(**row) for row in _rows(entry.get("sprint_grid"))),
            pit_stops=tuple(PitStop(**row) for row in _rows(entry.get("pit_stops"))),
            safety_cars=tuple(SafetyCarPeriod(deployed, retreated)
                              for deployed, retreated, *_ in safety["safety_cars"].get(key, [])),
            red_flag_laps=tuple(lap for lap, *_ in safety["red_flags"].get(key, [])),
            vsc_laps=tuple(safety["vsc_laps"].get(key, [])),
        ))
    return tuple(rounds)


@cache
def real_laps() -> dict[str, tuple[RealDriver, ...]]:
    """Every lap of the four real races, by f1db race folder (e.g. "01-bahrain")."""
    data = _load("laps-2024.json")
    races: dict[str, tuple[RealDriver, ...]] = {}
    for folder, race in data.items():
        drivers = []
        for acronym, entry in race["drivers"].items():
            stints = tuple(RealStint(*row) for row in entry["stints"])
            laps = tuple(
                RealLap(index + 1, _seconds(row[0]), _seconds(row[1]), _seconds(row[2]),
                        _seconds(row[3]), row[4], row[5])
                for index, row in enumerate(entry["laps"]))
            drivers.append(RealDriver(acronym, entry["number"], entry["team"], stints, laps))
        races[folder] = tuple(drivers)
    return races
