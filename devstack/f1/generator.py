"""Generated races (and sprints) with a known truth.

The generator simulates: it draws every car's green lap times from the model
(devstack/f1/model.py), bends them for planned pit cycles, runs the field through
safety cars, VSCs and red flags in time order, stops it at the flag, and derives
positions, intervals and overtakes from the resulting timeline (devstack/f1/timing.py).
Lap times, positions and gaps therefore agree by construction.

``generate_race`` returns the rows and a ``RaceTruth``: per stint the planned
degradation slope, the laps interfaces.md (metric v1) counts as valid for pace, the
least-squares slope of ``lap_duration - 0.03 * fuel_kg(n)`` on tyre age over those laps
as served, and a tolerance (5 standard errors of that slope under the lap noise); per
planned pit cycle the order before and after and the time gained. Nothing but lap 1,
in-laps and out-laps (laps the definition never counts) is bent to honour a cycle, so
the planned slope stays exact in expectation.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from devstack.f1 import facts
from devstack.f1.calendar import SessionInfo, place_fields
from devstack.f1.race_plan import Car, Kind, Neutralisation, Period, PitCycle
from devstack.f1.race_rows import race_rows
from devstack.f1.records import Item, SessionData, epoch, seeded, ts
from devstack.f1.simulation import finish, green_laps, plan, run
from devstack.f1.timing import LIGHTS_OUT_AFTER_S
from devstack.f1.truth import CycleTruth, RaceTruth, StintTruth, compute_truth
from devstack.f1.vendored import season

__all__ = [
    "Car",
    "CycleTruth",
    "GeneratedRace",
    "Neutralisation",
    "Period",
    "PitCycle",
    "RaceTruth",
    "StintTruth",
    "generate_race",
]

DEFAULT_START = datetime(2024, 6, 1, 13, 0, tzinfo=UTC)


@dataclass(slots=True)
class GeneratedRace:
    meeting: Item
    session: SessionInfo
    data: SessionData
    truth: RaceTruth


def generate_race(
    seed: int = 0,
    *,
    drivers: int | Sequence[int | Car] = 20,
    laps: int = 57,
    base_lap_s: float = 93.0,
    degradation: Mapping[int, float] | None = None,
    planned_pit_cycles: Sequence[PitCycle | tuple[int, int, int, int, Kind]
                                 | tuple[int, int, int, int, Kind, bool]] = (),
    safety_car: tuple[int, int] | None = None,
    neutralisations: Sequence[Neutralisation] = (),
    strategies: Mapping[int, Sequence[int]] | None = None,
    compounds: Mapping[int, Sequence[str]] | None = None,
    noise_s: float = 0.6,
    outlier_rate: float = 0.0,
    start: datetime | None = None,
    session_key: int = 9999,
    meeting_key: int = 9998,
    session_name: str = "Race",
    interval_points: Collection[int] = (1, 2, 3),
    stop_durations: bool = False,
    lap_one_dated: bool = True,
    circuit_id: str = "bahrain",
    results_published_after_s: float = 60.0,
) -> GeneratedRace:
    """A race of ``laps`` laps. ``degradation``: slope (s/lap) per car for all its stints
    (else drawn per compound); ``strategies``: in-laps per car (else drawn: 1-3 stops,
    a sprint none); ``safety_car=(a, b)`` is ``Neutralisation("SC", a, b)``."""
    rng = seeded(seed, "race")
    start_epoch = epoch(start or DEFAULT_START)
    info, meeting = _session(session_key, meeting_key, session_name, start_epoch, circuit_id)
    periods_wanted = sorted([*neutralisations,
                             *([Neutralisation("SC", *safety_car)] if safety_car else [])],
                            key=lambda n: n.from_lap)
    cycles = [cycle if isinstance(cycle, PitCycle) else PitCycle(*cycle)
              for cycle in planned_pit_cycles]
    specs = _specs(drivers)
    _validate(specs, cycles, periods_wanted, laps, strategies)
    cars = plan(specs, cycles, laps, rng, degradation or {}, strategies or {},
                compounds or {}, session_name)
    for car in cars:
        green_laps(car, laps, base_lap_s, noise_s, outlier_rate, rng)
    lights_out = start_epoch + LIGHTS_OUT_AFTER_S
    periods = run(cars, cycles, periods_wanted, lights_out, seed, rng)
    finish(cars, laps, lights_out)
    truth = compute_truth(cars, cycles, periods, laps, noise_s, lights_out)
    data = race_rows(info, cars, periods, truth, lights_out, rng,
                     interval_points=interval_points, stop_durations=stop_durations,
                     lap_one_dated=lap_one_dated, published_after=results_published_after_s)
    return GeneratedRace(meeting, info, data, truth)


def _session(session_key: int, meeting_key: int, name: str, start: float, circuit_id: str
             ) -> tuple[SessionInfo, Item]:
    """A stand-alone calendar entry: a meeting of one session at ``circuit_id``."""
    race = next((r for r in season() if r.circuit.id == circuit_id), season()[0])
    place = place_fields(race)
    end = start + 60 * facts.SESSION_MINUTES.get(name, 120)
    session_type = facts.SESSION_TYPES.get(name, "Race")
    item: Item = {"session_key": session_key, "meeting_key": meeting_key, "year": facts.YEAR,
                  "session_name": name, "session_type": session_type,
                  "date_start": ts(start), "date_end": ts(end), "is_cancelled": False, **place}
    meeting: Item = {"meeting_key": meeting_key, "year": facts.YEAR,
                     "meeting_name": "Generated Grand Prix",
                     "meeting_official_name": "Generated Grand Prix (pipeworks demo)",
                     "circuit_type": facts.CIRCUIT_TYPES.get(race.circuit.type, "Permanent"),
                     "date_start": ts(start), "date_end": ts(end), "is_cancelled": False,
                     **place}
    info = SessionInfo(session_key, meeting_key, name, session_type, start, end, circuit_id,
                       item, None)
    return info, meeting


def _specs(drivers: int | Sequence[int | Car]) -> list[Car]:
    if isinstance(drivers, int):
        known = sorted(season()[0].entrants)
        numbers = known[:drivers] + [100 + i for i in range(max(0, drivers - len(known)))]
        return [Car(number) for number in numbers]
    return [car if isinstance(car, Car) else Car(car) for car in drivers]


def _validate(specs: list[Car], cycles: list[PitCycle], wanted: list[Neutralisation],
              laps: int, strategies: Mapping[int, Sequence[int]] | None) -> None:
    numbers = {car.number for car in specs}
    if len(numbers) != len(specs):
        raise ValueError("driver numbers must be unique")
    for cycle in cycles:
        if {cycle.first, cycle.second} - numbers or cycle.first == cycle.second:
            raise ValueError(f"{cycle}: two different cars of the race")
        if not 2 <= cycle.first_lap < cycle.second_lap <= cycle.first_lap + 3:
            raise ValueError(f"{cycle}: needs 2 <= first_lap < second_lap <= first_lap + 3")
        if cycle.second_lap + 2 >= laps:
            raise ValueError(f"{cycle}: must end 2 laps before the flag")
        for neutralisation in wanted:
            if (neutralisation.from_lap - 1 <= cycle.second_lap + 2
                    and cycle.first_lap - 1 <= neutralisation.to_lap + 2):
                raise ValueError(f"{cycle} overlaps {neutralisation}")
        for car in (cycle.first, cycle.second):
            others = [lap for lap in (strategies or {}).get(car, ())
                      if lap not in (cycle.first_lap, cycle.second_lap)]
            if any(cycle.first_lap - 1 <= lap <= cycle.second_lap + 2 for lap in others):
                raise ValueError(f"{cycle}: car {car} stops again within the cycle")
    by_car: dict[int, list[PitCycle]] = {}
    for cycle in cycles:
        for car in (cycle.first, cycle.second):
            for other in by_car.get(car, []):
                if (other.first_lap - 1 <= cycle.second_lap + 2
                        and cycle.first_lap - 1 <= other.second_lap + 2):
                    raise ValueError(f"{cycle} and {other} share car {car} and overlap")
            by_car.setdefault(car, []).append(cycle)
    for a, b in itertools.pairwise(wanted):
        if b.from_lap <= a.to_lap + 1:
            raise ValueError(f"{a} and {b} overlap")
    for neutralisation in wanted:
        if not 1 <= neutralisation.from_lap <= neutralisation.to_lap < laps:
            raise ValueError(f"{neutralisation}: laps must be within the race")
