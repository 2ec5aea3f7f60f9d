"""Generated qualifying and sprint qualifying: three knock-out phases whose best laps are
f1db's Q1/Q2/Q3 times, so results, laps and positions agree.

Each car does one or two runs per phase it took part in (out-lap, one or two flying
laps, in-lap); its best run's flying lap is exactly f1db's time for the phase. Results
carry the contract's arrays of three (duration and gap per phase, null where a car did
not run); ``position`` follows the order of the best times.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from devstack.f1.calendar import SessionInfo
from devstack.f1.drivers import driver_rows
from devstack.f1.race_control import Messages
from devstack.f1.records import Item, Row, SessionData, one_per_instant, seconds, seeded, ts
from devstack.f1.runs import Run, place_runs, run_rows
from devstack.f1.vendored import Entrant, QualifyingResult
from devstack.f1.weather import weather_rows

# Phase lengths and the breaks after Q1 and Q2, minutes.
PHASES = {"Qualifying": ((18, 15, 12), (7, 8)), "Sprint Qualifying": ((12, 10, 8), (7, 7))}
OUT_LAP_FACTOR = 1.35
IN_LAP_FACTOR = 1.45


def generate_qualifying(
    info: SessionInfo,
    entrants: dict[int, Entrant],
    results: Sequence[QualifyingResult],
    *,
    seed: int,
    null_driver_share: float = 0.0,
) -> SessionData:
    rng = seeded(seed, "qualifying", info.key)
    keys = {"meeting_key": info.meeting_key, "session_key": info.key}
    lengths, breaks = PHASES.get(info.name, PHASES["Qualifying"])
    windows = []
    at = info.start
    for phase, minutes in enumerate(lengths):
        windows.append((at, at + 60 * minutes))
        at += 60 * (minutes + (breaks[phase] if phase < len(breaks) else 0))
    rows: dict[str, list[Row]] = {name: [] for name in ("laps", "stints", "session_result")}
    # (end, number, phase, duration) of every flying lap, for positions; and its lap.
    flying: list[tuple[float, int, int, float]] = []
    lap_of: dict[tuple[float, int], int] = {}
    laps_run: dict[int, int] = {}
    pole = min((r.best_s for r in results if r.best_s is not None), default=90.0)
    for result in results:
        runs = []
        for phase, window in enumerate(windows):
            time_s = (result.q1_s, result.q2_s, result.q3_s)[phase]
            took_part = time_s is not None or (phase == 0)
            if not took_part:
                continue
            runs.extend(_phase_runs(info.name, phase, time_s, pole, window, rng))
        built = run_rows(keys, result.number, runs, rng)
        rows["laps"].extend(built.laps)
        rows["stints"].extend(built.stints)
        laps_run[result.number] = len(built.laps)
        for end, lap, duration in built.timed:
            phase = next((i for i, (low, high) in enumerate(windows)
                          if low <= end <= high + 300), 2)
            flying.append((end, result.number, phase, duration))
            lap_of[(end, result.number)] = lap
    finished = max((row.marks[-1] for row in rows["laps"] if row.marks),
                   default=windows[-1][1]) + 60.0
    rows["position"] = _positions(keys, info.start, results, flying, windows)
    messages = Messages(keys, lambda at: None)
    messages.session_started(info.start, phase=1)
    for phase, (low, high) in enumerate(windows, start=1):
        messages.green_light(low, phase=phase)
        messages.chequered(high, phase=phase)
    # Laps deleted for track limits: never a car's best of a phase (results stand).
    best: dict[tuple[int, int], float] = {}
    for _, number, phase, duration in flying:
        best[(number, phase)] = min(best.get((number, phase), math.inf), duration)
    deletable = [lap for lap in flying if lap[3] > best[(lap[1], lap[2])]]
    for end, number, _, duration in rng.sample(deletable, min(len(deletable),
                                                               rng.randint(2, 4))):
        messages.track_limits(end + rng.uniform(10.0, 40.0), number, entrants[number].acronym,
                              lap_of[(end, number)], duration, rng)
    rows["race_control"] = messages.rows
    rows["drivers"] = driver_rows(keys, [entrants[r.number] for r in results], info.start, rng,
                                  null_driver_share)
    rows["weather"] = weather_rows(keys, info.circuit_id, info.start, max(info.end, finished),
                                   rng)
    rows["session_result"] = [Row(item, finished)
                              for item in _results(keys, results, laps_run)]
    return SessionData(info.key, rows, finished)


def _phase_runs(session: str, phase: int, time_s: float | None, pole: float,
                window: tuple[float, float], rng: random.Random) -> list[Run]:
    reference = time_s if time_s is not None else pole * rng.uniform(1.01, 1.03)
    count = 2 if phase > 0 or rng.random() < 0.7 else 1
    best_run = rng.randrange(count)
    compound = "SOFT" if session == "Qualifying" or phase == 2 else "MEDIUM"
    plans = []
    for index in range(count):
        if time_s is None:
            fliers = [reference * rng.uniform(1.0, 1.02)] if index == 0 else []
        else:
            best = time_s if index == best_run else time_s + rng.uniform(0.1, 0.9)
            fliers = [best]
            if rng.random() < 0.2:  # a second flying lap after a cool-down lap
                fliers = [best + rng.uniform(0.1, 0.5), reference * 1.3, best]
                if index != best_run:
                    fliers[-1] = best + rng.uniform(0.05, 0.3)
        durations = [reference * OUT_LAP_FACTOR * rng.uniform(0.98, 1.08), *fliers,
                     reference * IN_LAP_FACTOR * rng.uniform(0.97, 1.05)]
        plans.append([round(d, 3) for d in durations])
    low, high = window
    starts = place_runs([sum(p) for p in plans], (low + 30.0, high + 0.5 * reference), rng)
    used = phase == 0 and count == 2
    return [Run(start, compound, 3 if used and i == 0 else 0, plan, reference)
            for i, (start, plan) in enumerate(zip(starts, plans, strict=True))]


def _positions(keys: dict[str, int], start: float, results: Sequence[QualifyingResult],
               flying: list[tuple[float, int, int, float]],
               windows: list[tuple[float, float]]) -> list[Row]:
    """Order by the phase a car is still in, then its best time in that phase."""
    numbers = [r.number for r in results]
    phase_of = dict.fromkeys(numbers, 0)
    advanced: list[set[int]] = [set(numbers)]
    for phase in (1, 2):
        advanced.append({r.number for r in results
                         if (r.q2_s if phase == 1 else r.q3_s) is not None})
    best: dict[tuple[int, int], float] = {}
    events: list[tuple[float, int, int, float]] = sorted(flying)
    phase_ends = [(high, -1, phase, 0.0) for phase, (_, high) in enumerate(windows[:-1])]
    rows = []
    current: dict[int, int] = {}

    def emit(at: float) -> None:
        order = sorted(numbers, key=lambda n: (-phase_of[n],
                                               best.get((n, phase_of[n]), math.inf),
                                               min((best.get((n, p), math.inf)
                                                    for p in range(3)), default=math.inf), n))
        for rank, number in enumerate(order, start=1):
            if current.get(number) != rank:
                current[number] = rank
                rows.append(Row({**keys, "date": ts(at), "driver_number": number,
                                 "position": rank}, at))

    emit(start)
    for at, number, phase, duration in sorted(events + phase_ends):
        if number == -1:
            for n in advanced[phase + 1]:
                phase_of[n] = phase + 1
        else:
            key = (number, phase)
            best[key] = min(best.get(key, math.inf), duration)
        emit(at)
    return one_per_instant(rows)


def _results(keys: dict[str, int], results: Sequence[QualifyingResult],
             laps_run: dict[int, int]) -> list[Item]:
    fastest = [min((t for t in times if t is not None), default=None)
               for times in zip(*((r.q1_s, r.q2_s, r.q3_s) for r in results), strict=True)]
    items = []
    for result in results:
        times = (result.q1_s, result.q2_s, result.q3_s)
        gaps: list[float | None] = [
            None if t is None or best is None else seconds(t - best)
            for t, best in zip(times, fastest, strict=True)]
        status = result.position if isinstance(result.position, str) else None
        items.append({**keys, "driver_number": result.number,
                      "position": result.position if status is None else None,
                      "number_of_laps": laps_run.get(result.number, 0),
                      "dnf": False, "dns": status == "DNS" or not laps_run.get(result.number),
                      "dsq": status == "DSQ", "duration": list(times), "gap_to_leader": gaps})
    return items
