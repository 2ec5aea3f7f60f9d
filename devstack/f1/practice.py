"""Generated practice sessions: runs of laps whose count and best lap are f1db's.

A car's first run is an installation lap (out, in); then short runs on low fuel (the
best lap is one of them) and long runs on high fuel that degrade. Practice serves
drivers, laps, stints, race control, weather and results (best lap per car): no
positions, intervals or pit rows.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from devstack.f1 import model
from devstack.f1.calendar import SessionInfo
from devstack.f1.drivers import driver_rows
from devstack.f1.race_control import Messages
from devstack.f1.records import Item, Row, SessionData, seconds, seeded
from devstack.f1.runs import Run, place_runs, run_rows
from devstack.f1.vendored import Entrant, PracticeResult
from devstack.f1.weather import weather_rows

LONG_RUN_OFFSET_S = 1.6


def generate_practice(
    info: SessionInfo,
    entrants: dict[int, Entrant],
    results: Sequence[PracticeResult],
    *,
    seed: int,
    null_driver_share: float = 0.0,
) -> SessionData:
    rng = seeded(seed, "practice", info.key)
    keys = {"meeting_key": info.meeting_key, "session_key": info.key}
    rows: dict[str, list[Row]] = {"laps": [], "stints": []}
    fastest = min((r.time_s for r in results if r.time_s is not None), default=90.0)
    laps_run: dict[int, int] = {}
    timed: list[tuple[float, int, int, float]] = []
    for result in results:
        best = result.time_s if result.time_s is not None else fastest * 1.03
        runs = _runs(info, best, result.laps or rng.randint(18, 30), rng)
        built = run_rows(keys, result.number, runs, rng)
        rows["laps"].extend(built.laps)
        rows["stints"].extend(built.stints)
        laps_run[result.number] = len(built.laps)
        timed.extend((end, result.number, lap, d) for end, lap, d in built.timed)
    finished = max((row.marks[-1] for row in rows["laps"] if row.marks), default=info.end)
    finished = max(finished, info.end) + 60.0
    messages = Messages(keys, lambda at: None)
    messages.session_started(info.start)
    messages.green_light(info.start)
    # Laps deleted for track limits: never a car's best (the results stand).
    bests = {r.number: r.time_s for r in results}
    deletable = [lap for lap in timed if lap[3] != bests.get(lap[1])]
    for end, number, lap, duration in rng.sample(deletable,
                                                 min(len(deletable), rng.randint(1, 4))):
        messages.track_limits(end + rng.uniform(10.0, 40.0), number, entrants[number].acronym,
                              lap, duration, rng)
    messages.chequered(info.end)
    rows["race_control"] = messages.rows
    rows["drivers"] = driver_rows(keys, [entrants[r.number] for r in results], info.start, rng,
                                  null_driver_share)
    rows["weather"] = weather_rows(keys, info.circuit_id, info.start, finished, rng)
    rows["session_result"] = [Row(item, finished)
                              for item in _results(keys, results, laps_run, fastest)]
    return SessionData(info.key, rows, finished)


def _runs(info: SessionInfo, best: float, laps: int, rng: random.Random) -> list[Run]:
    """Runs adding up to ``laps`` laps, one of them with a flying lap of exactly ``best``."""
    plans: list[tuple[str, list[float]]] = []
    remaining = laps
    if remaining >= 2:
        plans.append(("MEDIUM", [best * 1.4, best * 1.5]))  # installation
        remaining -= 2
    best_at: tuple[int, int] | None = None  # (run, lap in run) of the session's best
    while remaining >= 3:
        long_run = best_at is not None and remaining >= 8 and rng.random() < 0.6
        size = min(remaining, rng.randint(8, 14) if long_run else rng.randint(3, 5))
        if remaining - size in (1, 2):
            size = remaining
        compound = rng.choice(("MEDIUM", "HARD")) if long_run else "SOFT"
        slope = model.draw_slope(compound, rng)
        fliers = []
        for age in range(1, size - 1):
            if long_run:
                fliers.append(best + LONG_RUN_OFFSET_S + slope * age + rng.gauss(0.0, 0.35))
            else:
                fliers.append(best + rng.uniform(0.15, 1.2))
        if best_at is None and fliers:
            best_at = (len(plans), 1)
        plans.append((compound, [best * 1.35 * rng.uniform(0.98, 1.06), *fliers,
                                 best * 1.45 * rng.uniform(0.97, 1.05)]))
        remaining -= size
    if remaining and plans:
        plans[-1][1].insert(-1, best + 2.5)  # a leftover lap joins the last run
    # Only the planned lap is the best; every other lap is slower.
    durations = [[round(max(d, best + 0.05), 3) for d in plan] for _, plan in plans]
    if best_at is not None:
        durations[best_at[0]][best_at[1]] = round(best, 3)
    starts = place_runs([sum(d) for d in durations], (info.start + 60.0, info.end), rng)
    return [Run(start, compound, rng.choice((0, 0, 0, 2, 4)), plan, best * 1.01)
            for start, (compound, _), plan in zip(starts, plans, durations, strict=True)]


def _results(keys: dict[str, int], results: Sequence[PracticeResult], laps_run: dict[int, int],
             fastest: float) -> list[Item]:
    return [{**keys, "driver_number": r.number,
             "position": r.position if isinstance(r.position, int) else None,
             "number_of_laps": laps_run.get(r.number, 0), "dnf": False,
             "dns": not laps_run.get(r.number), "dsq": False,
             "duration": r.time_s,
             "gap_to_leader": None if r.time_s is None else seconds(r.time_s - fastest)}
            for r in results]
