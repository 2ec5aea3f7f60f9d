"""The rows of a generated race: laps, stints, pits, race control, weather, drivers,
results, and positions, intervals and overtakes from the simulated timeline."""

from __future__ import annotations

import math
import random
from collections.abc import Collection

from devstack.f1 import facts, model
from devstack.f1.calendar import SessionInfo
from devstack.f1.drivers import driver_rows
from devstack.f1.race_control import Messages
from devstack.f1.race_plan import Period
from devstack.f1.records import Item, Row, SessionData, seconds, ts
from devstack.f1.simulation import SimCar
from devstack.f1.timing import Timeline, derive, laps_behind
from devstack.f1.truth import RaceTruth, classified_order
from devstack.f1.weather import weather_rows


def race_rows(info: SessionInfo, cars: list[SimCar], periods: list[Period], truth: RaceTruth,
              lights_out: float, rng: random.Random, *, interval_points: Collection[int],
              stop_durations: bool, lap_one_dated: bool, published_after: float
              ) -> SessionData:
    keys = {"meeting_key": info.meeting_key, "session_key": info.key}
    rows: dict[str, list[Row]] = {name: [] for name in
                                  ("laps", "stints", "pit", "drivers", "session_result")}
    timelines = []
    best = {car.number: min(car.durations[1:], default=0.0) for car in cars}
    for car in cars:
        if car.spec.dns:
            continue
        starts = car.starts(lights_out)
        splits = []
        for index, duration in enumerate(car.durations):
            lap = index + 1
            start = starts[index]
            s1, s2, s3 = model.sectors(duration, rng, entry_s=car.entry_s[index],
                                       exit_s=car.exit_s[index])
            split = (start + s1, start + s1 + s2)
            splits.append(split)
            i1, i2, trap = model.speeds(rng, slow=lap in car.stops or lap - 1 in car.stops)
            seg = model.segments(rng, out_lap=lap - 1 in car.stops, in_lap=lap in car.stops,
                                 best=duration == best[car.number])
            item = _lap_item(keys, car.number, lap, start if lap > 1 or lap_one_dated else None,
                             duration, (s1, s2, s3), (i1, i2, trap), seg,
                             out_lap=lap - 1 in car.stops)
            rows["laps"].append(Row(item, start, (*split, start + duration)))
        ends = [start + duration for start, duration in zip(starts, car.durations, strict=True)]
        retired_at = None
        if car.unfinished is not None:
            lap = len(car.durations) + 1
            item = _lap_item(keys, car.number, lap, car.unfinished, None, (None, None, None),
                             (None, None, None), (None, None, None), out_lap=lap - 1 in car.stops)
            rows["laps"].append(Row(item, car.unfinished))
            retired_at = car.unfinished + 40.0
            starts = [*starts, car.unfinished]
        timelines.append(Timeline(car.number, car.grid, starts, ends, splits, retired_at))
        for stint in car.stints:
            item = {**keys, "driver_number": car.number, "stint_number": stint.number,
                    "lap_start": stint.lap_start, "lap_end": stint.lap_end,
                    "compound": stint.compound, "tyre_age_at_start": stint.age_at_start}
            marks = tuple(starts[lap - 1] for lap in range(stint.lap_start + 1, stint.lap_end + 1)
                          if lap - 1 < len(starts))
            rows["stints"].append(Row(item, starts[stint.lap_start - 1], marks))
        for stop in car.stops:
            lane = car.lanes[stop]
            date = ends[stop - 1] - model.IN_LAP_SHARE * lane
            item = {**keys, "driver_number": car.number, "lap_number": stop, "date": ts(date),
                    "lane_duration": lane,
                    "stop_duration": round(rng.uniform(2.0, 3.4), 1) if stop_durations else None}
            rows["pit"].append(Row(item, date, (date + lane,)))
    leader = _leader_ends(cars, lights_out)

    def lap_at(at: float) -> int:
        return max(1, min(1 + sum(1 for end in leader if end <= at), truth.laps))

    flag = leader[truth.laps - 1] if len(leader) >= truth.laps else max(leader, default=0.0)
    messages = Messages(keys, lap_at)
    messages.add(info.start - 600.0, "RISK OF RAIN FOR F1 RACE IS 0%", dated=False)
    messages.green_light(info.start)
    messages.session_started(info.start)
    if len(leader) > 2:
        messages.drs(leader[1] + 1.0, enabled=True)
    for period in periods:
        if period.kind == "SC":
            assert period.in_this_lap is not None
            messages.safety_car(period.start, period.in_this_lap, period.end + 1.0)
        elif period.kind == "VSC":
            messages.virtual_safety_car(period.start, period.end)
        else:
            messages.red_flag(period.start, period.end)
    _track_limits(messages, cars, lights_out, rng)
    _yellow_flags(messages, leader, periods, rng)
    messages.chequered(flag)
    timing = derive(timelines, keys, initial_at=info.start, interval_points=interval_points)
    messages.blue_flags(timing.lapped, {car.number: car.entrant.acronym for car in cars})
    rows["race_control"] = messages.rows
    rows["position"], rows["intervals"], rows["overtakes"] = (
        timing.positions, timing.intervals, timing.overtakes)
    last = max((timeline.ends[-1] for timeline in timelines if timeline.ends), default=flag)
    finished = max(last, flag) + published_after
    rows["drivers"] = driver_rows(keys, [car.entrant for car in cars], info.start, rng)
    rows["weather"] = weather_rows(keys, info.circuit_id, info.start, max(info.end, finished),
                                   rng)
    rows["session_result"] = [Row(item, finished)
                              for item in _results(keys, info, cars, truth, lights_out)]
    return SessionData(info.key, rows, finished)


def _lap_item(keys: dict[str, int], number: int, lap: int, start: float | None,
              duration: float | None, sector_times: tuple[float | None, ...],
              speed: tuple[int | None, ...], seg: tuple[list[int | None] | None, ...], *,
              out_lap: bool) -> Item:
    return {
        **keys, "driver_number": number, "lap_number": lap,
        "date_start": None if start is None else ts(start),
        "lap_duration": None if duration is None else seconds(duration),
        "duration_sector_1": sector_times[0], "duration_sector_2": sector_times[1],
        "duration_sector_3": sector_times[2],
        "i1_speed": speed[0], "i2_speed": speed[1], "st_speed": speed[2],
        "is_pit_out_lap": out_lap,
        "segments_sector_1": seg[0], "segments_sector_2": seg[1], "segments_sector_3": seg[2],
    }


def _leader_ends(cars: list[SimCar], lights_out: float) -> list[float]:
    """Index n - 1: when the first car completed lap n."""
    firsts: dict[int, float] = {}
    for car in cars:
        end = lights_out
        for lap, duration in enumerate(car.durations, start=1):
            end += duration
            firsts[lap] = min(firsts.get(lap, math.inf), end)
    return [firsts[lap] for lap in sorted(firsts)]


def _track_limits(messages: Messages, cars: list[SimCar], lights_out: float,
                  rng: random.Random) -> None:
    candidates = [(car, lap) for car in cars for lap in range(6, len(car.durations) - 1)]
    for car, lap in rng.sample(candidates, min(len(candidates), rng.randint(2, 5))):
        end = car.end_of(lap, lights_out)
        messages.track_limits(end + rng.uniform(15.0, 60.0), car.number, car.entrant.acronym,
                              lap, car.durations[lap - 1], rng)


def _yellow_flags(messages: Messages, leader: list[float], periods: list[Period],
                  rng: random.Random) -> None:
    """A few local yellows (a car off, debris) away from the neutralisations."""
    if len(leader) < 10:
        return
    for _ in range(rng.randint(0, 4)):
        at = rng.uniform(leader[2], leader[-3])
        if any(period.start - 120 <= at <= period.end + 120 for period in periods):
            continue
        messages.yellow(at, at + rng.uniform(15.0, 120.0), rng.randint(1, 20),
                        double=rng.random() < 0.15)


def _results(keys: dict[str, int], info: SessionInfo, cars: list[SimCar], truth: RaceTruth,
             lights_out: float) -> list[Item]:
    points = facts.SPRINT_POINTS if info.name == "Sprint" else facts.RACE_POINTS
    order = classified_order(cars, lights_out)
    winner = order[0] if order else None
    items = []
    for rank, car in enumerate(order, start=1):
        done = len(car.durations)
        retired = car.unfinished is not None or (car.spec.retire_after is not None
                                                 and done < truth.laps)
        classified = done >= 0.9 * truth.laps
        total = sum(car.durations)
        gap: float | str | None = None
        duration: float | None = None
        if classified and winner is not None:
            down = len(winner.durations) - done
            if down > 0:
                gap = laps_behind(3 * down)
            else:
                duration = seconds(total)
                gap = seconds(total - sum(winner.durations)) if car is not winner else 0
        items.append({**keys, "driver_number": car.number,
                      "position": rank if classified else None, "number_of_laps": done,
                      "dnf": retired, "dns": False, "dsq": False, "duration": duration,
                      "gap_to_leader": gap,
                      "points": points[rank - 1] if classified and rank <= len(points) else 0})
    for car in cars:
        if not car.durations:
            items.append({**keys, "driver_number": car.number, "position": None,
                          "number_of_laps": 0, "dnf": False, "dns": True, "dsq": False,
                          "duration": None, "gap_to_leader": None, "points": 0})
    return items
