"""What a generated race's truth says: per stint the planned degradation and what the
F1 pipeline's metric (interfaces.md, v1) must find over the served laps; per planned pit
cycle the order before and after.

Valid for pace, as interfaces.md defines it: not lap 1, not an in- or out-lap, not
overlapping a neutralisation, not right after a lap overlapping a safety car, and within
1.07 x the median of the stint's laps that pass those rules. The fit is the least-squares
slope of ``lap_duration - 0.03 * fuel_kg(n)`` on tyre age over those laps; its tolerance
is 5 standard errors given the lap noise (5 * noise / sqrt(Sxx)): the fitted slope
misses the planned one by more with a probability under 1e-6 per stint (checked: over
8,500 stints the standardised error has mean 0.00 and deviation 1.00). The fitted slope
itself is exact: a pipeline following interfaces.md must find it to rounding.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from devstack.f1 import model
from devstack.f1.race_plan import Period, PitCycle
from devstack.f1.simulation import SimCar, SimStint

# Above this a lap is not valid for pace (interfaces.md: 1.07 x the stint median).
VALID_MEDIAN_FACTOR = 1.07
MIN_VALID_LAPS = 5
TOLERANCE_SE = 5.0


@dataclass(frozen=True, slots=True)
class StintTruth:
    driver_number: int
    stint_number: int
    compound: str
    lap_start: int
    lap_end: int
    tyre_age_at_start: int
    slope_s_per_lap: float
    # Laps interfaces.md (v1) counts as valid for pace, and the fit over them as served.
    valid_laps: tuple[int, ...]
    fitted_slope_s_per_lap: float | None
    # 5 standard errors of the fitted slope given the lap noise (None below 5 laps).
    tolerance_s_per_lap: float | None


@dataclass(frozen=True, slots=True)
class CycleTruth:
    cycle: PitCycle
    # (ahead, behind) at the end of first_lap - 1 and of second_lap + 1.
    before: tuple[int, int]
    after: tuple[int, int]
    succeeded: bool
    # Time ``first`` gained on ``second`` between those two moments.
    gain_s: float


@dataclass(slots=True)
class RaceTruth:
    laps: int
    noise_s: float
    fuel_start_kg: float = model.FUEL_START_KG
    fuel_effect_s_per_kg: float = model.FUEL_EFFECT_S_PER_KG
    stints: list[StintTruth] = field(default_factory=list)
    cycles: list[CycleTruth] = field(default_factory=list)
    periods: list[Period] = field(default_factory=list)
    pit_laps: dict[int, tuple[int, ...]] = field(default_factory=dict)
    classification: list[int] = field(default_factory=list)

    def stint(self, driver_number: int, stint_number: int) -> StintTruth:
        for stint in self.stints:
            if (stint.driver_number, stint.stint_number) == (driver_number, stint_number):
                return stint
        raise KeyError((driver_number, stint_number))


def _overlaps(start: float, end: float, period: Period) -> bool:
    return start < period.end and end > period.start


def compute_truth(cars: list[SimCar], cycles: list[PitCycle], periods: list[Period],
                  laps: int, noise: float, lights_out: float) -> RaceTruth:
    truth = RaceTruth(laps=laps, noise_s=noise, periods=list(periods))
    for car in cars:
        truth.pit_laps[car.number] = tuple(car.stops)
        starts = car.starts(lights_out)
        windows = [(starts[i], starts[i] + d) for i, d in enumerate(car.durations)]
        for stint in car.stints:
            valid = []
            for lap in range(stint.lap_start, stint.lap_end + 1):
                if lap > len(car.durations) or lap == 1 or lap in car.stops:
                    continue
                if stint.number > 1 and lap == stint.lap_start:
                    continue
                if any(_overlaps(*windows[lap - 1], period) for period in periods):
                    continue
                if any(_overlaps(*windows[lap - 2], period) for period in periods
                       if period.kind == "SC"):
                    continue
                valid.append(lap)
            if valid:
                median = statistics.median(car.durations[lap - 1] for lap in valid)
                valid = [lap for lap in valid
                         if car.durations[lap - 1] <= VALID_MEDIAN_FACTOR * median]
            fitted, tolerance = _fit(car, stint, valid, laps, noise)
            truth.stints.append(StintTruth(car.number, stint.number, stint.compound,
                                           stint.lap_start, stint.lap_end, stint.age_at_start,
                                           stint.slope, tuple(valid), fitted, tolerance))
    by_number = {car.number: car for car in cars}
    for cycle in cycles:
        first, second = by_number[cycle.first], by_number[cycle.second]
        before_lap, after_lap = cycle.first_lap - 1, cycle.second_lap + 1

        def order(lap: int, a: SimCar = first, b: SimCar = second) -> tuple[int, int]:
            a_end, b_end = a.end_of(lap, lights_out), b.end_of(lap, lights_out)
            return (a.number, b.number) if a_end < b_end else (b.number, a.number)

        before, after = order(before_lap), order(after_lap)
        behind_before = before[1]
        succeeded = after[0] == behind_before
        gain = ((second.end_of(after_lap, lights_out) - first.end_of(after_lap, lights_out))
                - (second.end_of(before_lap, lights_out) - first.end_of(before_lap, lights_out)))
        if behind_before != cycle.attacker or succeeded != cycle.succeeds:
            raise RuntimeError(f"{cycle} came out {before} -> {after}: generator bug")
        truth.cycles.append(CycleTruth(cycle, before, after, succeeded, round(gain, 3)))
    truth.classification = [car.number for car in classified_order(cars, lights_out)]
    return truth


def _fit(car: SimCar, stint: SimStint, valid: list[int], laps: int, noise: float
         ) -> tuple[float | None, float | None]:
    """Least squares of fuel-corrected lap time on tyre age, exactly as served."""
    if len(valid) < MIN_VALID_LAPS:
        return None, None
    xs = [float(model.tyre_age(lap, stint.lap_start, stint.age_at_start)) for lap in valid]
    ys = [car.durations[lap - 1] - model.FUEL_EFFECT_S_PER_KG * model.fuel_kg(lap, laps)
          for lap in valid]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    return round(sxy / sxx, 6), round(TOLERANCE_SE * max(noise, 0.001) / math.sqrt(sxx), 6)


def classified_order(cars: list[SimCar], lights_out: float) -> list[SimCar]:
    """Laps completed (more first), then the time the last one was completed."""
    started = [car for car in cars if car.durations]
    return sorted(started, key=lambda car: (-len(car.durations),
                                            car.end_of(len(car.durations), lights_out)))
