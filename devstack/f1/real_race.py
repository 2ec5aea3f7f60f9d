"""A real 2024 race (f1-laps-2024 + f1db) converted to the contract's entities.

Laps, sectors, stints and tyre ages are the data's own; results, grid and pit stops
f1db's. What the data lack is derived, and documented in data/SOURCE.md:

- ``date_start``: lights out (session start + LIGHTS_OUT_AFTER_S) plus the car's earlier
  laps. A lap without a time counts with its sector sum, or its known sectors plus the
  driver's median for the missing ones; for a car whose total time f1db gives, laps
  with no timing at all share what the total leaves (a red-flag lap takes it all, as
  Monaco's lap 1 holds the whole suspension). Other cars borrow those fills by lap.
- ``pit.date``: the end of the in-lap less the time spent in the lane before the line
  (a share of the lane time; the whole of it under a red flag).
- race control: from the FastF1 track-status digits most cars saw on a lap, timed on
  the leader's laps; positions, intervals and overtakes from devstack/f1/timing.py.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Collection
from dataclasses import dataclass

from devstack.f1.calendar import SessionInfo
from devstack.f1.drivers import driver_rows
from devstack.f1.race_control import Messages
from devstack.f1.records import Item, Row, SessionData, seconds, seeded, ts
from devstack.f1.timing import LIGHTS_OUT_AFTER_S, Timeline, derive, laps_behind
from devstack.f1.vendored import RaceResult, RealDriver, RealLap, RealStint, Round, real_laps
from devstack.f1.weather import weather_rows

# Where the sector ends fall in a lap whose sectors are unknown (share of the lap).
DEFAULT_SPLITS = (0.31, 0.73)
# The first race of 2024 with pit stop_duration in OpenF1 (the United States GP).
STOP_DURATION_FROM_ROUND = 19
# A lane time this long is a stop under a red flag.
RED_FLAG_LANE_S = 120.0
# Status digits that must be seen by this share of a lap's runners to count for the lap.
STATUS_SHARE = 0.3
WET = frozenset({"INTERMEDIATE", "WET"})


@dataclass(slots=True)
class _Car:
    driver: RealDriver
    result: RaceResult
    laps: list[RealLap]
    # Effective duration of every completed lap.
    durations: list[float]
    # True when the last record is a lap begun and never finished (a crash).
    unfinished: bool


def build_real_race(
    race: Round,
    info: SessionInfo,
    *,
    seed: int,
    lap_one_dated: bool,
    interval_points: Collection[int] = (1, 2, 3),
) -> SessionData:
    rng = seeded(seed, "real", info.key)
    keys = {"meeting_key": info.meeting_key, "session_key": info.key}
    results = {result.number: result for result in race.race_results}
    cars = _cars(race, results)
    codes = _lap_codes(cars)
    _fill_durations(cars, codes, _out_lap_s1(cars, race))
    _red_flag_stops(cars, race)
    lights_out = info.start + LIGHTS_OUT_AFTER_S
    starts: dict[int, list[float]] = {}
    for car in cars:
        begun = [lights_out]
        for duration in car.durations:
            begun.append(begun[-1] + duration)
        if not car.unfinished:
            begun.pop()  # the end of the last lap starts nothing
        starts[car.driver.number] = begun
    leader = _leader_crossings(cars, starts)

    def lap_at(at: float) -> int:
        done = sum(1 for end in leader[1:] if end <= at)
        return max(1, min(done + 1, race.laps))

    finish = leader[min(race.laps, len(leader) - 1)]
    rows: dict[str, list[Row]] = {name: [] for name in
                                  ("laps", "stints", "pit", "race_control", "drivers",
                                   "weather", "session_result")}
    timelines = []
    for car in cars:
        number = car.driver.number
        laps_rows, splits = _lap_rows(keys, car, starts[number], lap_one_dated)
        rows["laps"].extend(laps_rows)
        rows["stints"].extend(_stint_rows(keys, car, starts[number]))
        ends = [start + duration for start, duration in zip(starts[number], car.durations,
                                                            strict=False)]
        median = statistics.median(car.durations) if car.durations else 90.0
        retired_at = None
        last_seen = starts[number][-1] if car.unfinished else (ends[-1] if ends else lights_out)
        if last_seen < finish:
            retired_at = last_seen + 0.5 * median
        grid = _grid_position(race, number, len(cars))
        timelines.append(Timeline(number, grid, starts[number], ends, splits, retired_at))
    rows["pit"] = _pit_rows(keys, race, {car.driver.number: car for car in cars}, starts, rng)
    messages = Messages(keys, lap_at)
    _race_control(messages, race, info, cars, codes, leader, lights_out, finish, rng)
    timing = derive(timelines, keys, initial_at=info.start, interval_points=interval_points)
    messages.blue_flags(timing.lapped, {n: e.acronym for n, e in race.entrants.items()})
    rows["race_control"] = messages.rows
    rows["position"], rows["intervals"], rows["overtakes"] = (
        timing.positions, timing.intervals, timing.overtakes)
    finished = max([finish, *(t.ends[-1] for t in timelines if t.ends)]) + 60.0
    entrants = [race.entrants[result.number] for result in race.race_results]
    rows["drivers"] = driver_rows(keys, entrants, info.start, rng)
    rain = _rain_spans(cars, leader)
    rows["weather"] = weather_rows(keys, race.circuit.id, info.start,
                                   max(info.end, finished), rng, rain)
    rows["session_result"] = [Row(item, finished) for item in _results(keys, race, cars)]
    return SessionData(info.key, rows, finished)


def _cars(race: Round, results: dict[int, RaceResult]) -> list[_Car]:
    cars = []
    known = set()
    for driver in real_laps()[race.folder]:
        laps = list(driver.laps)
        last = laps[-1]
        unfinished = all(value is None for value in (last.time_s, last.s1, last.s2, last.s3))
        cars.append(_Car(driver, results[driver.number], laps, [], unfinished))
        known.add(driver.number)
    for number, result in results.items():
        # Started but have no lap file (Monaco PER and OCO, out on lap 1): one lap begun.
        if number not in known and result.position != "DNS":
            entrant = race.entrants[number]
            lap = RealLap(1, None, None, None, None, None, "1")
            stint = RealStint(1, "MEDIUM", 1, 1, 1)
            driver = RealDriver(entrant.acronym, number, entrant.team_id, (stint,), (lap,))
            cars.append(_Car(driver, result, [lap], [], True))
    return cars


def _lap_codes(cars: list[_Car]) -> dict[int, set[str]]:
    """Per lap number, the status digits at least STATUS_SHARE of its runners saw."""
    seen: dict[int, dict[str, int]] = {}
    runners: dict[int, int] = {}
    for car in cars:
        for lap in car.laps:
            runners[lap.number] = runners.get(lap.number, 0) + 1
            counts = seen.setdefault(lap.number, {})
            for digit in set(lap.status):
                counts[digit] = counts.get(digit, 0) + 1
    return {lap: {digit for digit, count in counts.items()
                  if count >= max(1.0, STATUS_SHARE * runners[lap])}
            for lap, counts in seen.items()}


def _out_lap_s1(cars: list[_Car], race: Round) -> dict[tuple[int, int], float]:
    """An estimate of sector 1 of every out-lap: the field's median out-lap sector 1,
    plus what the stop's lane time (f1db) exceeds the median lane time by (Bottas's
    74.8 s stop in Bahrain 2024 has no out-lap time in the data)."""
    lanes = {(stop.number, stop.lap): stop.time_s for stop in race.pit_stops
             if stop.time_s is not None and stop.time_s < RED_FLAG_LANE_S}
    median_lane = statistics.median(lanes.values()) if lanes else 22.0
    known = [car.laps[stint.lap_start - 1].s1 for car in cars for stint in car.driver.stints[1:]
             if stint.lap_start <= len(car.laps)]
    s1_values = [s1 for s1 in known if s1 is not None]
    if not s1_values:
        return {}
    median_s1 = statistics.median(s1_values)
    return {(car.driver.number, stint.lap_start):
            median_s1 + max(0.0, lanes.get((car.driver.number, stint.lap_start - 1),
                                           median_lane) - median_lane)
            for car in cars for stint in car.driver.stints[1:]}


def _fill_durations(cars: list[_Car], codes: dict[int, set[str]],
                    out_lap_s1: dict[tuple[int, int], float]) -> None:
    fills: dict[int, list[float]] = {}
    pending: list[tuple[_Car, list[float], list[int]]] = []
    for car in cars:
        completed = car.laps[:-1] if car.unfinished else car.laps
        medians = _sector_medians(completed)
        priors: list[float] = []
        unknown: list[int] = []
        for index, lap in enumerate(completed):
            sectors = (lap.s1, lap.s2, lap.s3)
            if lap.time_s is not None:
                priors.append(lap.time_s)
                continue
            if all(s is not None for s in sectors):
                priors.append(sum(s for s in sectors if s is not None))
                continue
            expected = (out_lap_s1.get((car.driver.number, lap.number), medians[0]),
                        *medians[1:])
            priors.append(sum(s if s is not None else m for s, m in zip(sectors, expected,
                                                                          strict=True)))
            if all(s is None for s in sectors):
                unknown.append(index)
        result = car.result
        anchored = (result.time_s is not None and result.laps == len(completed)
                    and bool(unknown))
        if anchored and result.time_s is not None:
            total = result.time_s - (result.penalty_s or 0.0)
            excess = total - sum(priors)
            if excess > 0:
                red = [i for i in unknown if "5" in codes.get(i + 1, set())]
                if red:
                    priors[red[0]] += excess
                else:
                    share = sum(priors[i] for i in unknown)
                    for i in unknown:
                        priors[i] += excess * priors[i] / share
            for i in unknown:
                fills.setdefault(i, []).append(priors[i])
        else:
            pending.append((car, priors, unknown))
        car.durations = priors
    for car, priors, unknown in pending:
        for i in unknown:
            if i in fills:
                priors[i] = statistics.fmean(fills[i])
        car.durations = priors


def _red_flag_stops(cars: list[_Car], race: Round) -> None:
    """A stop under a red flag spans the suspension (f1db's lane time: São Paulo's
    ~1,400 s): where the car's in- and out-lap are shorter than that, the in-lap takes
    the rest, since f1db's race time (the anchor above) may not count the suspension."""
    by_number = {car.driver.number: car for car in cars}
    for stop in race.pit_stops:
        car = by_number.get(stop.number)
        if car is None or stop.time_s is None or stop.time_s < RED_FLAG_LANE_S:
            continue
        durations = car.durations
        if stop.lap > len(durations):
            continue
        have = sum(durations[stop.lap - 1:stop.lap + 1])
        need = stop.time_s + 30.0
        if have < need:
            durations[stop.lap - 1] += need - have


def _sector_medians(laps: list[RealLap]) -> tuple[float, float, float]:
    def median(values: list[float | None], default: float) -> float:
        known = [v for v in values if v is not None]
        return statistics.median(known) if known else default

    return (median([lap.s1 for lap in laps[1:]], 30.0), median([lap.s2 for lap in laps], 40.0),
            median([lap.s3 for lap in laps], 25.0))


def _leader_crossings(cars: list[_Car], starts: dict[int, list[float]]) -> list[float]:
    """Index n: when the first car completed lap n (index 0: lights out)."""
    first: dict[int, float] = {}
    lights_out = min(begun[0] for begun in starts.values())
    for car in cars:
        begun = starts[car.driver.number]
        for index, duration in enumerate(car.durations):
            end = begun[index] + duration
            first[index + 1] = min(first.get(index + 1, end), end)
    return [lights_out] + [first[n] for n in range(1, len(first) + 1)]


def _lap_rows(keys: dict[str, int], car: _Car, starts: list[float], lap_one_dated: bool
              ) -> tuple[list[Row], list[tuple[float, float]]]:
    number = car.driver.number
    out_laps = {stint.lap_start for stint in car.driver.stints[1:]}
    rows = []
    splits = []
    for index, lap in enumerate(car.laps):
        start = starts[index]
        item: Item = {
            **keys,
            "driver_number": number,
            "lap_number": lap.number,
            "date_start": ts(start) if lap.number > 1 or lap_one_dated else None,
            "lap_duration": lap.time_s,
            "duration_sector_1": lap.s1,
            "duration_sector_2": lap.s2,
            "duration_sector_3": lap.s3,
            "i1_speed": None,
            "i2_speed": None,
            "st_speed": None,
            "is_pit_out_lap": lap.number in out_laps,
            "segments_sector_1": None,
            "segments_sector_2": None,
            "segments_sector_3": None,
        }
        if index < len(car.durations):
            duration = car.durations[index]
            split_1 = start + (lap.s1 if lap.s1 is not None else DEFAULT_SPLITS[0] * duration)
            split_2 = (split_1 + lap.s2 if lap.s2 is not None
                       else start + DEFAULT_SPLITS[1] * duration)
            end = start + duration
            split_1, split_2 = min(split_1, end - 0.002), min(split_2, end - 0.001)
            split_2 = max(split_2, split_1 + 0.001)
            splits.append((split_1, split_2))
            rows.append(Row(item, start, (split_1, split_2, end)))
        else:
            rows.append(Row(item, start))
    return rows, splits


def _stint_rows(keys: dict[str, int], car: _Car, starts: list[float]) -> list[Row]:
    rows = []
    begun = len(car.laps)
    for stint in car.driver.stints:
        if stint.lap_start > begun:
            continue
        lap_end = min(stint.lap_end, begun)
        item: Item = {
            **keys,
            "driver_number": car.driver.number,
            "stint_number": stint.number,
            "lap_start": stint.lap_start,
            "lap_end": lap_end,
            "compound": stint.compound,
            "tyre_age_at_start": stint.life_start - 1,
        }
        marks = tuple(starts[lap - 1] for lap in range(stint.lap_start + 1, lap_end + 1))
        rows.append(Row(item, starts[stint.lap_start - 1], marks))
    return rows


def _pit_rows(keys: dict[str, int], race: Round, cars: dict[int, _Car],
              starts: dict[int, list[float]], rng: random.Random) -> list[Row]:
    rows = []
    for stop in race.pit_stops:
        car = cars.get(stop.number)
        if car is None or stop.lap > len(car.durations):
            continue
        in_lap_end = starts[stop.number][stop.lap - 1] + car.durations[stop.lap - 1]
        lane = stop.time_s
        before_line = 0.0 if lane is None else (lane if lane > RED_FLAG_LANE_S else 0.12 * lane)
        date = in_lap_end - before_line
        stationary = None
        if (race.round >= STOP_DURATION_FROM_ROUND and lane is not None
                and lane < RED_FLAG_LANE_S):
            stationary = round(rng.uniform(2.0, 3.4), 1)
        item: Item = {**keys, "driver_number": stop.number, "lap_number": stop.lap,
                      "date": ts(date), "lane_duration": lane, "stop_duration": stationary}
        rows.append(Row(item, date, (date + (lane or 0.0),)))
    return rows


def _grid_position(race: Round, number: int, field_size: int) -> int:
    """1-based start order: f1db's grid, pit-lane starters behind it in listed order."""
    for index, slot in enumerate(race.grid):
        if slot.number == number:
            return slot.position if isinstance(slot.position, int) else field_size + index
    return 2 * field_size


def _race_control(messages: Messages, race: Round, info: SessionInfo, cars: list[_Car],
                  codes: dict[int, set[str]], leader: list[float], lights_out: float,
                  finish: float, rng: random.Random) -> None:
    def lap_window(lap: int) -> tuple[float, float]:
        lap = min(lap, len(leader) - 1)
        return leader[lap - 1], leader[lap]

    messages.add(info.start - 600.0, "RISK OF RAIN FOR F1 RACE IS 10%", dated=False)
    messages.green_light(info.start)
    messages.session_started(info.start)
    messages.drs(lap_window(3)[0] + 1.0, enabled=True)
    spans = _status_spans(codes)
    normal = statistics.median(leader[i + 1] - leader[i] for i in range(len(leader) - 1))
    # Red flags first: a safety car around one starts or ends at the resumption.
    resumptions: list[tuple[int, int, float]] = []
    for first, last in spans.get("5", []):
        begin, first_end = lap_window(first)
        red = begin + min(40.0, 0.3 * (first_end - begin))
        resumed = max(red + 60.0, lap_window(last)[1] - normal)
        messages.red_flag(red, resumed)
        resumptions.append((first, last, resumed))
    for first, last in spans.get("4", []):
        begin, first_end = lap_window(first)
        last_begin, last_end = lap_window(last)
        deployed = begin + 0.3 * (first_end - begin)
        in_this_lap = last_begin + 0.2 * min(last_end - last_begin, normal)
        for red_first, red_last, resumed in resumptions:
            if red_first <= first <= red_last:
                deployed = resumed + 1.0
            if red_first <= last <= red_last:
                in_this_lap = resumed + 0.2 * normal
        messages.safety_car(deployed, max(in_this_lap, deployed + 1.0), last_end + 1.0)
    for first, last in spans.get("6", []):
        begin, first_end = lap_window(first)
        last_begin, last_end = lap_window(last)
        messages.virtual_safety_car(begin + 0.4 * (first_end - begin),
                                    last_begin + 0.6 * (last_end - last_begin))
    for first, last in spans.get("2", []):
        begin, first_end = lap_window(first)
        last_begin, last_end = lap_window(last)
        at = begin + rng.uniform(0.1, 0.6) * min(first_end - begin, normal)
        until = last_begin + rng.uniform(0.7, 0.95) * min(last_end - last_begin, normal)
        messages.yellow(at, max(until, at + 5.0), rng.randint(1, 20), double=rng.random() < 0.2)
    _track_limits(messages, race, cars, lights_out, rng)
    messages.chequered(finish)


def _status_spans(codes: dict[int, set[str]]) -> dict[str, list[tuple[int, int]]]:
    """Consecutive laps with each digit of interest: (first lap, last lap) spans."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for digit in "2456":
        laps = sorted(lap for lap, seen in codes.items() if digit in seen)
        groups: list[tuple[int, int]] = []
        for lap in laps:
            if groups and lap == groups[-1][1] + 1:
                groups[-1] = (groups[-1][0], lap)
            else:
                groups.append((lap, lap))
        if groups:
            spans[digit] = groups
    return spans


def _track_limits(messages: Messages, race: Round, cars: list[_Car], lights_out: float,
                  rng: random.Random) -> None:
    candidates = [(car, lap) for car in cars for lap in car.laps[5:-2] if lap.time_s is not None]
    for car, lap in rng.sample(candidates, min(len(candidates), rng.randint(2, 5))):
        end = lights_out + sum(car.durations[:lap.number])
        assert lap.time_s is not None
        messages.track_limits(end + rng.uniform(15.0, 60.0), car.driver.number,
                              race.entrants[car.driver.number].acronym, lap.number, lap.time_s,
                              rng)


def _rain_spans(cars: list[_Car], leader: list[float]) -> list[tuple[float, float]]:
    """Laps most cars ran on intermediates or wets count as rain, on the leader's laps."""
    wet: dict[int, int] = {}
    total: dict[int, int] = {}
    for car in cars:
        compound_of = {lap: stint.compound for stint in car.driver.stints
                       for lap in range(stint.lap_start, stint.lap_end + 1)}
        for lap in car.laps:
            total[lap.number] = total.get(lap.number, 0) + 1
            if compound_of.get(lap.number) in WET:
                wet[lap.number] = wet.get(lap.number, 0) + 1
    return [(leader[number - 1], leader[number]) for number in sorted(wet)
            if wet[number] * 2 > total[number] and number < len(leader)]


def _results(keys: dict[str, int], race: Round, cars: list[_Car]) -> list[Item]:
    durations = {car.driver.number: sum(car.durations) for car in cars}
    completed = {car.driver.number: len(car.durations) for car in cars}
    items = []
    for result in race.race_results:
        status = result.position if isinstance(result.position, str) else None
        classified = status is None
        gap: float | str | None = None
        duration: float | None = None
        if classified:
            if result.laps_down:
                gap = laps_behind(3 * result.laps_down)
                duration = seconds(durations.get(result.number, 0.0)) or None
            else:
                gap = result.gap_s if result.gap_s is not None else 0
                duration = result.time_s
        items.append({
            **keys,
            "driver_number": result.number,
            "position": result.position if classified else None,
            "number_of_laps": (result.laps if result.laps is not None
                               else completed.get(result.number, 0)),
            "dnf": status in ("DNF", "NC"),
            "dns": status == "DNS",
            "dsq": status == "DSQ",
            "duration": duration,
            "gap_to_leader": gap,
            "points": result.points or 0,
        })
    return items
