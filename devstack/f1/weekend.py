"""A race weekend of the 2024 calendar: every session's data, real where the vendored
laps have it (the races of Bahrain, Monaco, Hungary and São Paulo), generated and
calibrated on f1db's figures everywhere else (results, lap counts, best laps, grids,
retirements; safety cars, VSCs and red flags from f1-safety)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from devstack.f1.calendar import SessionInfo, round_sessions
from devstack.f1.generator import Car, Neutralisation, generate_race
from devstack.f1.practice import generate_practice
from devstack.f1.qualifying import generate_qualifying
from devstack.f1.real_race import STOP_DURATION_FROM_ROUND, build_real_race
from devstack.f1.records import Item, Row, SessionData, seeded
from devstack.f1.vendored import GridSlot, PracticeResult, RaceResult, Round, real_laps

# Share of practice and qualifying sessions that show null driver name/team fields.
NULL_DRIVER_SHARE = 0.1
# Generated race pace: a fresh-tyre, empty-tank lap 2-8% slower than pole, from the
# winner's average lap less the model's average fuel (55 kg x 0.03 s) and tyre wear, and
# about 35 s of pit stops a race.
BASE_OVER_POLE = 1.02
BASE_OVER_POLE_MAX = 1.08
AVERAGE_FUEL_AND_WEAR_S = 2.1
PIT_LOSS_PER_RACE_S = 35.0
RED_FLAG_SUSPENSION_S = 1800.0


@dataclass(frozen=True, slots=True)
class Density:
    """How many rows the generated timing has: interval rows at these timing points of a
    lap (1, 2: sector ends, 3: the line), and practice laps scaled by this share."""

    interval_points: tuple[int, ...] = (1, 2, 3)
    practice_share: float = 1.0


def build_round(race: Round, *, seed: int, density: Density = Density(),
                names: Collection[str] | None = None
                ) -> tuple[Item, list[tuple[SessionInfo, SessionData]]]:
    """The round's meeting and its sessions (``names``: only those sessions)."""
    meeting, sessions = round_sessions(race)
    built = []
    for info in sessions:
        if names is not None and info.name not in names:
            continue
        built.append((info, build_session(race, info, seed=seed, density=density)))
    return meeting, built


def build_session(race: Round, info: SessionInfo, *, seed: int, density: Density
                  ) -> SessionData:
    session_seed = seed * 100_003 + info.key
    if info.name.startswith("Practice"):
        results = race.practice.get("fp" + info.name[-1], ())
        if density.practice_share < 1.0:
            results = tuple(_fewer_laps(r, density.practice_share) for r in results)
        return generate_practice(info, race.entrants, results, seed=session_seed,
                                 null_driver_share=NULL_DRIVER_SHARE)
    if info.name in ("Qualifying", "Sprint Qualifying"):
        sprint = info.name == "Sprint Qualifying"
        data = generate_qualifying(info, race.entrants,
                                   race.sprint_qualifying if sprint else race.qualifying,
                                   seed=session_seed, null_driver_share=NULL_DRIVER_SHARE)
        grid = race.sprint_grid if sprint else race.grid
        data.rows["starting_grid"] = _starting_grid(info, grid, data.finished)
        return data
    if info.name == "Race" and race.folder in real_laps():
        return build_real_race(race, info, seed=seed, lap_one_dated=race.round == 1,
                               interval_points=density.interval_points)
    return _generated_race(race, info, session_seed, density)


def _fewer_laps(result: PracticeResult, share: float) -> PracticeResult:
    laps = None if result.laps is None else max(2, round(result.laps * share))
    return replace(result, laps=laps)


def _starting_grid(info: SessionInfo, grid: tuple[GridSlot, ...], published: float
                   ) -> list[Row]:
    """The race's (or sprint's) grid under the qualifying session's key (contract)."""
    keys = {"meeting_key": info.meeting_key, "session_key": info.key}
    return [Row({**keys, "driver_number": slot.number,
                 "position": slot.position if isinstance(slot.position, int) else None,
                 "lap_duration": slot.time_s}, published)
            for slot in grid]


def _generated_race(race: Round, info: SessionInfo, seed: int, density: Density) -> SessionData:
    sprint = info.name == "Sprint"
    laps = (race.sprint_laps or 19) if sprint else race.laps
    results = race.sprint_results if sprint else race.race_results
    grid = race.sprint_grid if sprint else race.grid
    base = _base_lap(race, results, laps)
    rng = seeded(seed, "lap-one")
    generated = generate_race(
        seed,
        drivers=_cars(race, results, grid, laps, base),
        laps=laps,
        base_lap_s=base,
        neutralisations=[] if sprint else _neutralisations(race, laps),
        noise_s=0.6,
        outlier_rate=0.02,
        start=datetime.fromtimestamp(info.start, UTC),
        session_key=info.key,
        meeting_key=info.meeting_key,
        session_name=info.name,
        interval_points=density.interval_points,
        stop_durations=race.round >= STOP_DURATION_FROM_ROUND,
        lap_one_dated=rng.random() < 0.5,
        circuit_id=race.circuit.id,
    )
    # The calendar's session item is the one served; the generator's own is dropped.
    return generated.data


def _base_lap(race: Round, results: tuple[RaceResult, ...], laps: int) -> float:
    """A fresh-tyre, empty-tank racing lap: the winner's average lap (f1db) less what the
    model adds on average (fuel, tyre wear, pit stops), kept within 2-8% of pole."""
    pole = min((q.best_s for q in race.qualifying if q.best_s is not None), default=90.0)
    winner = next((r for r in results if r.position == 1 and r.time_s), None)
    if winner is None or winner.time_s is None:
        return pole * BASE_OVER_POLE
    average = winner.time_s / laps - AVERAGE_FUEL_AND_WEAR_S - PIT_LOSS_PER_RACE_S / laps
    return min(pole * BASE_OVER_POLE_MAX, max(pole * BASE_OVER_POLE, average))


def _cars(race: Round, results: tuple[RaceResult, ...], grid: tuple[GridSlot, ...], laps: int,
          base: float) -> list[Car]:
    """Cars paced so that the simulated result resembles f1db's."""
    winner = next((r.time_s for r in results if r.position == 1), None)
    quali = {q.number: q.best_s for q in race.qualifying}
    pole = min((t for t in quali.values() if t is not None), default=base)
    slots = {slot.number: index + 1 for index, slot in enumerate(grid)}
    cars = []
    for result in results:
        if result.position == "DNS":
            cars.append(Car(result.number, dns=True, entrant=race.entrants[result.number]))
            continue
        if result.time_s is not None and winner is not None and result.laps:
            pace = (result.time_s - (result.penalty_s or 0.0) - winner) / result.laps
        elif result.laps_down:
            pace = (result.laps_down + 0.5) * base / laps
        else:
            best = quali.get(result.number)
            pace = 0.9 * (best - pole) if best is not None else 1.5
        retire_after = result.laps if result.retired is not None and result.laps is not None \
            and result.laps < laps else None
        cars.append(Car(result.number, pace_s=max(0.0, pace),
                        grid=slots.get(result.number, len(grid) + len(cars) + 1),
                        retire_after=retire_after, entrant=race.entrants[result.number]))
    return cars


def _neutralisations(race: Round, laps: int) -> list[Neutralisation]:
    wanted: list[Neutralisation] = []
    for period in race.safety_cars:
        to_lap = (period.retreated or laps) - 1
        wanted.append(Neutralisation("SC", period.deployed, max(period.deployed, to_lap)))
    groups: list[list[int]] = []
    for lap in race.vsc_laps:
        if groups and lap == groups[-1][-1] + 1:
            groups[-1].append(lap)
        else:
            groups.append([lap])
    wanted.extend(Neutralisation("VSC", group[0], group[-1]) for group in groups)
    wanted.extend(Neutralisation("RED", lap, lap, RED_FLAG_SUSPENSION_S)
                  for lap in race.red_flag_laps)
    merged: list[Neutralisation] = []
    for item in sorted(wanted, key=lambda n: (n.from_lap, n.kind)):
        if item.to_lap >= laps:
            continue
        if merged and item.from_lap <= merged[-1].to_lap + 1:
            last = merged[-1]
            if last.kind == item.kind == "SC":  # back-to-back safety cars: one period
                merged[-1] = Neutralisation("SC", last.from_lap, max(last.to_lap, item.to_lap))
            continue  # a different kind on top of another: keep the first
        merged.append(item)
    return merged
