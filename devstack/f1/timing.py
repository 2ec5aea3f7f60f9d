"""Positions, intervals and overtakes of a race, derived from when each car passed each
timing point, so that they agree with the laps by construction.

A car's progress counts timing points: three per lap (end of sector 1, end of sector
2, the line). The running order at any moment sorts cars by progress (more first), then
by when they reached it (earlier first); a car that retires drops to the back. Every
change of that order is a ``position`` event, every car that moves ahead of another an
``overtake`` (pit stops included, as OpenF1's are), and every timing point a car passes
an ``intervals`` row: the time since the leader and the car ahead passed the same point,
or ``"+N LAP(S)"`` when that car is whole laps ahead.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Collection
from dataclasses import dataclass, field

from devstack.f1.records import Row, one_per_instant, seconds, ts

POINTS_PER_LAP = 3
# Lights out after a race session's scheduled start: Bahrain 2024's formation lap began
# at 15:00 and the race at about 15:03:42.
LIGHTS_OUT_AFTER_S = 222.0


@dataclass(slots=True)
class Timeline:
    number: int
    # Start order, 1-based: breaks ties before the first timing point.
    grid: int
    # Start of every lap begun (a retired car's last lap may have no end).
    starts: list[float]
    # End of every completed lap.
    ends: list[float]
    # Sector 1 and sector 2 end of every completed lap.
    splits: list[tuple[float, float]]
    # When a car that stopped before the flag leaves the running order (None: it did not).
    retired_at: float | None = None


@dataclass(slots=True)
class RaceTiming:
    positions: list[Row] = field(default_factory=list)
    intervals: list[Row] = field(default_factory=list)
    overtakes: list[Row] = field(default_factory=list)
    # (when, car): the leader has come a further lap up behind the car (a blue flag).
    lapped: list[tuple[float, int]] = field(default_factory=list)


def laps_behind(points: int) -> str:
    laps = points // POINTS_PER_LAP
    return f"+{laps} LAP" if laps == 1 else f"+{laps} LAPS"


def derive(
    timelines: list[Timeline],
    keys: dict[str, int],
    *,
    initial_at: float,
    interval_points: Collection[int] = (1, 2, 3),
) -> RaceTiming:
    """``keys`` (meeting_key, session_key) go into every item; ``interval_points`` says at
    which of a lap's timing points (1, 2, 3 = the line) interval rows are emitted."""
    out = RaceTiming()
    cars = sorted(timelines, key=lambda timeline: timeline.grid)
    # Per car: progress reached and when; the sort key of the running order.
    progress = {car.number: 0 for car in cars}
    reached: dict[int, list[float]] = {car.number: [initial_at] for car in cars}
    retired: dict[int, float] = {}

    def key(number: int, grid: int) -> tuple[float, float, float, int]:
        if number in retired:
            return (1.0, retired[number], 0.0, grid)
        return (0.0, -progress[number], reached[number][-1], grid)

    grids = {car.number: car.grid for car in cars}
    order = sorted((key(n, grids[n]), n) for n in progress)
    for rank, (_, number) in enumerate(order):
        _position(out, keys, initial_at, number, rank + 1)

    events: list[tuple[float, int, int]] = []  # (time, -progress or 0 for retirement, car)
    for car in cars:
        for lap, (end, (split_1, split_2)) in enumerate(zip(car.ends, car.splits, strict=True)):
            base = lap * POINTS_PER_LAP
            events.extend(((split_1, -(base + 1), car.number), (split_2, -(base + 2), car.number),
                           (end, -(base + 3), car.number)))
        if car.retired_at is not None:
            events.append((car.retired_at, 0, car.number))
    events.sort()
    laps_down = {car.number: 0 for car in cars}
    for at, negative_progress, number in events:
        old_key = key(number, grids[number])
        old_rank = order.index((old_key, number))
        del order[old_rank]
        if negative_progress == 0:
            retired[number] = at
        else:
            progress[number] = -negative_progress
            reached[number].append(at)
        insort(order, (key(number, grids[number]), number))
        new_rank = order.index((key(number, grids[number]), number))
        if new_rank != old_rank:
            low, high = sorted((old_rank, new_rank))
            for rank in range(low, high + 1):
                _position(out, keys, at, order[rank][1], rank + 1)
            if new_rank < old_rank and negative_progress != 0:
                for rank in range(new_rank + 1, old_rank + 1):
                    out.overtakes.append(Row({
                        **keys, "date": ts(at), "overtaking_driver_number": number,
                        "overtaken_driver_number": order[rank][1], "position": new_rank + 1,
                    }, at))
        point = -negative_progress
        if negative_progress != 0 and new_rank == 0:
            _note_lapped(out, at, point, progress, retired, laps_down)
        if negative_progress != 0 and (point - 1) % POINTS_PER_LAP + 1 in interval_points:
            out.intervals.append(_interval(keys, at, number, point, new_rank, order,
                                           progress, reached))
    out.positions = one_per_instant(out.positions)
    return out


def _note_lapped(out: RaceTiming, at: float, leader_point: int, progress: dict[int, int],
                 retired: dict[int, float], laps_down: dict[int, int]) -> None:
    """The leader, passing a timing point, is one more lap ahead of a running car: the
    car has not yet passed that point of the track on its previous lap (three timing
    points back), so the leader went by it somewhere in the last sector."""
    for number, point in progress.items():
        if number in retired:
            continue
        down = (leader_point - point - 1) // POINTS_PER_LAP
        if down > laps_down[number]:
            laps_down[number] = down
            out.lapped.append((at, number))


def _position(out: RaceTiming, keys: dict[str, int], at: float, number: int, position: int
              ) -> None:
    out.positions.append(Row({**keys, "date": ts(at), "driver_number": number,
                              "position": position}, at))


def _interval(
    keys: dict[str, int], at: float, number: int, point: int, rank: int,
    order: list[tuple[tuple[float, float, float, int], int]],
    progress: dict[int, int], reached: dict[int, list[float]],
) -> Row:
    def behind(other: int) -> float | str:
        ahead_by = progress[other] - point
        if ahead_by >= POINTS_PER_LAP:
            return laps_behind(ahead_by)
        return seconds(at - reached[other][point])

    gap: float | str | None
    interval: float | str | None
    if rank == 0:
        gap, interval = 0.0, None  # the leader: 0 / null (the contract allows either)
    else:
        gap = behind(order[0][1])
        interval = behind(order[rank - 1][1])
    return Row({**keys, "date": ts(at), "driver_number": number, "gap_to_leader": gap,
                "interval": interval}, at)
