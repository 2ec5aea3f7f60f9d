"""The simulation behind a generated race: plan strategies, draw green lap times,
bend them for planned pit cycles, run the field through neutralisations in time order,
stop it at the flag.

Every lap time is kept to the millisecond, as served, so sums of served values equal
the simulation's own times (interfaces.md compares them exactly).
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from devstack.f1 import model
from devstack.f1.race_plan import Car, Neutralisation, Period, PitCycle
from devstack.f1.vendored import Entrant, season

# Under a safety car the car at the head of the queue laps this much slower than its
# green pace; the cars behind close up at CATCH_UP_FACTOR to a gap of QUEUE_GAP_S.
SC_FACTOR = 1.45
CATCH_UP_FACTOR = 1.12
QUEUE_GAP_S = (0.5, 1.1)
# The lap after a safety car (slow restart; interfaces.md never counts it).
RESTART_LOSS_S = 1.0
# A VSC costs this share of the time spent under it.
VSC_EXTRA = 0.4
# How far into the leader's lap each neutralisation begins.
START_SHARE: dict[str, float] = {"SC": 0.25, "VSC": 0.3, "RED": 0.3}
# The generated part of a pit cycle: the gap before, the margin after.
CYCLE_GAP_BEFORE_S = (0.5, 1.5)
CYCLE_MARGIN_AFTER_S = (0.8, 2.0)
# What already counts as honoured: a gap before within these bounds (attacker behind),
# a margin after of at least this much.
CYCLE_GAP_OK = (0.3, 2.5)
MIN_MARGIN_S = 0.5
MAX_RUNS = 8
STRATEGIES: dict[int, tuple[tuple[str, ...], ...]] = {
    0: (("MEDIUM",), ("SOFT",)),
    1: (("MEDIUM", "HARD"), ("HARD", "MEDIUM"), ("SOFT", "HARD")),
    2: (("SOFT", "HARD", "HARD"), ("MEDIUM", "HARD", "MEDIUM"), ("SOFT", "MEDIUM", "HARD"),
        ("MEDIUM", "HARD", "SOFT")),
    3: (("SOFT", "HARD", "MEDIUM", "SOFT"), ("MEDIUM", "HARD", "HARD", "SOFT")),
}


@dataclass(slots=True)
class SimStint:
    number: int
    compound: str
    lap_start: int
    lap_end: int
    age_at_start: int
    slope: float


@dataclass(slots=True)
class SimCar:
    spec: Car
    entrant: Entrant
    grid: int
    pace: float
    stops: list[int]
    stints: list[SimStint]
    lanes: dict[int, float]
    # Per lap (index lap - 1): duration, and the time in it that is not racing pace:
    # pit exit (sector 1) and pit entry (sector 3).
    durations: list[float] = field(default_factory=list)
    exit_s: list[float] = field(default_factory=list)
    entry_s: list[float] = field(default_factory=list)
    # When a retired car began the lap it never finished (None: it did not retire).
    unfinished: float | None = None

    @property
    def number(self) -> int:
        return self.spec.number

    def starts(self, lights_out: float) -> list[float]:
        if not self.durations:
            return []
        begun = [lights_out]
        for duration in self.durations[:-1]:
            begun.append(begun[-1] + duration)
        return begun

    def end_of(self, lap: int, lights_out: float) -> float:
        return lights_out + sum(self.durations[:lap])


def plan(specs: list[Car], cycles: list[PitCycle], laps: int, rng: random.Random,
         degradation: Mapping[int, float], strategies: Mapping[int, Sequence[int]],
         compounds: Mapping[int, Sequence[str]], session_name: str) -> list[SimCar]:
    entrants = season()[0].entrants
    paces = sorted(rng.uniform(0.0, 2.5) for _ in specs)
    paces = [p - paces[0] for p in paces]
    stops_of: dict[int, list[int]] = {number: list(laps_) for number, laps_ in strategies.items()}
    for cycle in cycles:
        stops_of.setdefault(cycle.first, []).append(cycle.first_lap)
        stops_of.setdefault(cycle.second, []).append(cycle.second_lap)
    site_lane = rng.uniform(model.LANE_S[0] + 0.5, model.LANE_S[1] - 0.5)
    cars = []
    for index, spec in enumerate(specs):
        entrant = spec.entrant or entrants.get(spec.number) or Entrant(
            spec.number, f"driver-{spec.number}", "Driver", f"Number{spec.number}",
            f"D{spec.number:02d}"[-3:], "rb")
        stops = sorted(set(stops_of[spec.number])) if spec.number in stops_of else (
            [] if session_name == "Sprint" else _auto_stops(laps, rng))
        plan = (list(compounds.get(spec.number, ()))
                or list(rng.choice(STRATEGIES[min(3, len(stops))])))
        while len(plan) < len(stops) + 1:
            plan.append(rng.choice(("HARD", "MEDIUM")))
        stints = []
        bounds = [0, *stops, laps]
        for number in range(1, len(bounds)):
            compound = plan[number - 1]
            age = (0 if rng.random() < 0.5 else 3) if number == 1 else (
                0 if rng.random() < 0.8 else rng.randint(1, 4))
            slope = degradation.get(spec.number, model.draw_slope(compound, rng))
            stints.append(SimStint(number, compound, bounds[number - 1] + 1, bounds[number], age,
                                 slope))
        lanes = {stop: round(min(model.LANE_S[1], max(model.LANE_S[0],
                                                      site_lane + rng.gauss(0.0, 0.5))), 3)
                 for stop in stops}
        pace = spec.pace_s if spec.pace_s is not None else paces[index]
        cars.append(SimCar(spec, entrant, spec.grid or index + 1, pace, stops, stints, lanes))
    by_number = {car.number: car for car in cars}
    for cycle in cycles:
        # A close fight: the pair on the same pace, through the same pit lane time.
        attacker, defender = by_number[cycle.attacker], by_number[cycle.defender]
        if attacker.spec.pace_s is None:
            attacker.pace = defender.pace
        attacker_stop = cycle.first_lap if cycle.kind == "undercut" else cycle.second_lap
        defender_stop = cycle.second_lap if cycle.kind == "undercut" else cycle.first_lap
        attacker.lanes[attacker_stop] = defender.lanes[defender_stop]
    return cars


def _auto_stops(laps: int, rng: random.Random) -> list[int]:
    count = rng.choices((1, 2, 3), weights=(0.35, 0.45, 0.2))[0]
    weights = [rng.uniform(0.7, 1.3) for _ in range(count + 1)]
    total = sum(weights)
    stops: list[int] = []
    running = 0.0
    for weight in weights[:-1]:
        running += weight
        lap = round(laps * running / total)
        lap = max(lap, (stops[-1] + 4) if stops else 3)
        if lap <= laps - 3:
            stops.append(lap)
    return stops


def green_laps(car: SimCar, laps: int, base: float, noise: float, outliers: float,
               rng: random.Random) -> None:
    if car.spec.dns:
        return
    last = laps if car.spec.retire_after is None else min(laps, car.spec.retire_after + 1)
    stint_of = {lap: stint for stint in car.stints
                for lap in range(stint.lap_start, stint.lap_end + 1)}
    for lap in range(1, last + 1):
        stint = stint_of[lap]
        age = model.tyre_age(lap, stint.lap_start, stint.age_at_start)
        duration = (base + car.pace + model.COMPOUND_OFFSET_S.get(stint.compound, 0.0)
                    + model.FUEL_EFFECT_S_PER_KG * model.fuel_kg(lap, laps)
                    + stint.slope * age + rng.gauss(0.0, noise))
        if outliers and rng.random() < outliers:
            duration += rng.uniform(1.0, 4.0)  # a mistake, traffic
        exit_s = entry_s = 0.0
        if lap == 1:
            exit_s += model.START_LOSS_S + model.START_LOSS_PER_SLOT_S * (car.grid - 1)
        if lap in car.lanes:
            entry_s = model.IN_LAP_SHARE * car.lanes[lap] + 0.8
        if lap - 1 in car.lanes:
            exit_s += (1 - model.IN_LAP_SHARE) * car.lanes[lap - 1] + model.COLD_TYRES_S
        car.durations.append(round(duration + exit_s + entry_s, 3))
        car.exit_s.append(exit_s)
        car.entry_s.append(entry_s)


@dataclass(frozen=True, slots=True)
class _Target:
    cycle: PitCycle
    gap_before: float
    margin_after: float


def run(cars: list[SimCar], cycles: list[PitCycle], wanted: list[Neutralisation],
        lights_out: float, seed: int, rng: random.Random) -> list[Period]:
    """Run the field through the neutralisations, bending lap times until every planned
    pit cycle comes out as planned; returns the neutralisation periods.

    Only laps never valid for pace are bent (interfaces.md, v1): the latest lap 1,
    in-lap, out-lap or restart lap (after a safety car) of the attacker before the cycle
    sets the gap before it; the attacker's out-lap in the cycle the margin after. A bent
    lap shifts everything after it, and a later safety car queues the field anew, so the
    run repeats until nothing needs bending (two or three runs).
    """
    targets = [_Target(cycle, rng.uniform(*CYCLE_GAP_BEFORE_S),
                       rng.uniform(*CYCLE_MARGIN_AFTER_S))
               for cycle in sorted(cycles, key=lambda c: c.first_lap)]
    green = {car.number: (list(car.durations), list(car.exit_s)) for car in cars}
    bends: dict[tuple[int, int], float] = {}
    for _ in range(MAX_RUNS):
        for car in cars:
            durations, exits = green[car.number]
            car.durations = [round(d + bends.get((car.number, lap), 0.0), 3)
                             for lap, d in enumerate(durations, start=1)]
            car.exit_s = [e + bends.get((car.number, lap), 0.0)
                          for lap, e in enumerate(exits, start=1)]
        periods = [neutralise(cars, item, lights_out, random.Random(f"{seed}:queue:{index}"))  # noqa: S311
                   for index, item in enumerate(wanted)]
        if not _bend(cars, targets, periods, lights_out, bends):
            return periods
    raise ValueError("the planned pit cycles cannot all be honoured; move them away from "
                     "the neutralisations or give their cars similar pace")


def _bend(cars: list[SimCar], targets: list[_Target], periods: list[Period],
          lights_out: float, bends: dict[tuple[int, int], float]) -> bool:
    """Add the bends the cycles still need (to ``bends`` and the cars); False if none."""
    by_number = {car.number: car for car in cars}
    done_until: dict[int, int] = {}
    bent = False
    for target in targets:
        cycle = target.cycle
        attacker, defender = by_number[cycle.attacker], by_number[cycle.defender]
        before, after = cycle.first_lap - 1, cycle.second_lap + 1

        def gap(lap: int, attacker: SimCar = attacker, defender: SimCar = defender) -> float:
            return sum(attacker.durations[:lap]) - sum(defender.durations[:lap])

        shift = 0.0
        if not CYCLE_GAP_OK[0] <= gap(before) <= CYCLE_GAP_OK[1]:
            free = _free_laps(attacker, periods, lights_out, done_until.get(attacker.number, 0),
                              before)
            if not free:
                raise ValueError(f"{cycle}: car {attacker.number} has no lap 1, pit stop or "
                                 f"safety-car restart before lap {before} to set the gap on")
            shift = target.gap_before - gap(before)
            _add(attacker, free[-1], shift, bends)
        margin = gap(after)
        honoured = margin <= -MIN_MARGIN_S if cycle.succeeds else margin >= MIN_MARGIN_S
        if not honoured:
            wanted_margin = -target.margin_after if cycle.succeeds else target.margin_after
            attacker_stop = cycle.first_lap if cycle.kind == "undercut" else cycle.second_lap
            _add(attacker, attacker_stop + 1, wanted_margin - margin, bends)
        bent = bent or shift != 0.0 or not honoured
        for car in (attacker, defender):
            done_until[car.number] = max(done_until.get(car.number, 0), after)
    return bent


def _free_laps(car: SimCar, periods: list[Period], lights_out: float, after: int,
               before: int) -> list[int]:
    """Laps in (after, before) never valid for pace and not slowed by a safety car
    (a queue would swallow a bend): lap 1, in- and out-laps, the lap after an SC."""
    starts = car.starts(lights_out)
    safety_cars = [p for p in periods if p.kind == "SC"]

    def under_sc(lap: int) -> bool:
        start = starts[lap - 1]
        end = start + car.durations[lap - 1]
        return any(start < p.end and end > p.start for p in safety_cars)

    free = []
    for lap in range(after + 1, min(before, len(car.durations) + 1)):
        if under_sc(lap):
            continue
        if lap == 1 or lap in car.lanes or lap - 1 in car.lanes or (lap > 1 and under_sc(lap - 1)):
            free.append(lap)
    return free


def _add(car: SimCar, lap: int, by: float, bends: dict[tuple[int, int], float]) -> None:
    index = lap - 1
    if car.durations[index] + by < 0.5 * car.durations[index]:
        raise ValueError(f"car {car.number}: lap {lap} cannot absorb {by:+.1f} s; give the "
                         "cars of a pit cycle similar pace")
    bends[(car.number, lap)] = bends.get((car.number, lap), 0.0) + by
    car.durations[index] = round(car.durations[index] + by, 3)
    car.exit_s[index] += by


def neutralise(cars: list[SimCar], wanted: Neutralisation, lights_out: float,
               rng: random.Random) -> Period:
    """Slow every lap that overlaps the period, in time order (a queue under an SC)."""
    running = [car for car in cars if len(car.durations) >= wanted.from_lap]
    if not running:
        raise ValueError(f"{wanted}: no car reaches lap {wanted.from_lap}")
    starts = {car.number: car.starts(lights_out) for car in cars}
    head = min(running, key=lambda car: starts[car.number][wanted.from_lap - 1])
    head_start = starts[head.number][wanted.from_lap - 1]
    begin = round(head_start + START_SHARE[wanted.kind] * head.durations[wanted.from_lap - 1], 3)
    if wanted.kind == "RED":
        resumed = round(begin + wanted.suspension_s, 3)
        for car in cars:
            for index, start in enumerate(starts[car.number]):
                if start <= begin < start + car.durations[index]:
                    car.durations[index] = round(car.durations[index] + wanted.suspension_s, 3)
                    car.exit_s[index] += wanted.suspension_s
        return Period("RED", begin, resumed)
    queue: list[tuple[float, int, int]] = []
    by_number = {car.number: car for car in cars}
    for car in cars:
        for index, start in enumerate(starts[car.number]):
            if start + car.durations[index] > begin:
                heapq.heappush(queue, (start, car.number, index))
                break
    first_start: dict[int, float] = {}
    last_end: dict[int, float] = {}
    end: float | None = None
    in_this_lap: float | None = None
    slowed: set[int] = set()
    while queue:
        start, number, index = heapq.heappop(queue)
        car = by_number[number]
        lap = index + 1
        duration = car.durations[index]
        if end is not None and start >= end:
            if wanted.kind == "SC" and number in slowed:
                car.durations[index] = round(duration + RESTART_LOSS_S, 3)
                car.exit_s[index] += RESTART_LOSS_S
            continue
        is_head = lap not in first_start
        if is_head:
            first_start[lap] = start
        green = max(0.0, begin - start)
        if wanted.kind == "SC":
            factor = SC_FACTOR if is_head else CATCH_UP_FACTOR
            finish = start + green + (duration - green) * factor
            if not is_head:
                finish = max(finish, last_end[lap] + rng.uniform(*QUEUE_GAP_S))
        else:
            until = end if end is not None else math.inf
            overlap = max(0.0, min(start + duration, until) - max(start, begin))
            finish = start + duration + VSC_EXTRA * overlap
        new = round(finish - start, 3)
        car.exit_s[index] += new - duration
        car.durations[index] = new
        last_end[lap] = max(last_end.get(lap, -math.inf), start + new)
        slowed.add(number)
        if is_head and lap == wanted.to_lap:
            if wanted.kind == "SC":
                end = round(start + new, 3)
                in_this_lap = round(start + 0.2 * new, 3)
            else:
                end = round(start + 0.6 * new, 3)
        if index + 1 < len(car.durations):
            heapq.heappush(queue, (start + new, number, index + 1))
    if end is None:
        raise ValueError(f"{wanted}: the leader never reaches lap {wanted.to_lap}")
    return Period(wanted.kind, begin, end, in_this_lap)


def finish(cars: list[SimCar], laps: int, lights_out: float) -> None:
    """The flag falls when the leader completes ``laps``; every other car finishes the
    next time it crosses the line. A retired car keeps its unfinished lap's start."""
    finishers = [car for car in cars if len(car.durations) >= laps
                 and car.spec.retire_after is None]
    flag = min(car.end_of(laps, lights_out) for car in finishers) if finishers else math.inf
    for car in cars:
        if car.spec.retire_after is not None and car.spec.retire_after < len(car.durations):
            completed = car.spec.retire_after
            car.unfinished = car.end_of(completed, lights_out)
            _keep(car, completed, begun=completed + 1)
            continue
        ends = 0.0
        for lap, duration in enumerate(car.durations, start=1):
            ends += duration
            if lights_out + ends >= flag:
                _keep(car, lap)
                break


def _keep(car: SimCar, laps: int, begun: int | None = None) -> None:
    """Keep ``laps`` completed laps; stints run to the last lap begun (a retired car's
    unfinished lap counts: OpenF1's ``lap_end`` is the lap a car is on)."""
    begun = laps if begun is None else begun
    del car.durations[laps:], car.exit_s[laps:], car.entry_s[laps:]
    car.stops = [stop for stop in car.stops if stop <= laps and stop < begun]
    kept = []
    for stint in car.stints:
        if stint.lap_start <= max(begun, 1):
            stint.lap_end = min(stint.lap_end, max(begun, 1))
            kept.append(stint)
    car.stints = kept
