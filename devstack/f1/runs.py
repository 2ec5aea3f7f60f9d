"""Laps and stints of sessions run in runs (practice, qualifying): a car leaves the pit
lane on a set of tyres, does some laps, comes back in. One run is one stint."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from devstack.f1 import model
from devstack.f1.records import Item, Row, seconds, ts


@dataclass(slots=True)
class Run:
    start: float
    compound: str
    tyre_age_at_start: int
    # Every lap of the run: the first is the out-lap, the last the in-lap.
    durations: list[float]
    # A racing lap of the car, to tell how much of an out- or in-lap is not racing.
    reference_s: float


@dataclass(slots=True)
class RunRows:
    laps: list[Row] = field(default_factory=list)
    stints: list[Row] = field(default_factory=list)
    # (end, lap number, duration) of every lap that is neither an out- nor an in-lap.
    timed: list[tuple[float, int, float]] = field(default_factory=list)


def run_rows(keys: dict[str, int], number: int, runs: list[Run], rng: random.Random
             ) -> RunRows:
    out = RunRows()
    lap = 0
    fastest = min((d for run in runs for d in run.durations[1:-1]), default=0.0)
    for stint_number, run in enumerate(runs, start=1):
        start = run.start
        first = lap + 1
        lap_starts = []
        for index, duration in enumerate(run.durations):
            lap += 1
            out_lap, in_lap = index == 0, index == len(run.durations) - 1
            extra = max(0.0, duration - run.reference_s)
            s1, s2, s3 = model.sectors(duration, rng, exit_s=0.5 * extra if out_lap else 0.0,
                                       entry_s=0.5 * extra if in_lap and not out_lap else 0.0)
            i1, i2, trap = model.speeds(rng, slow=out_lap or in_lap)
            seg = model.segments(rng, out_lap=out_lap, in_lap=in_lap, best=duration == fastest)
            item: Item = {
                **keys, "driver_number": number, "lap_number": lap, "date_start": ts(start),
                "lap_duration": seconds(duration), "duration_sector_1": s1,
                "duration_sector_2": s2, "duration_sector_3": s3, "i1_speed": i1,
                "i2_speed": i2, "st_speed": trap, "is_pit_out_lap": out_lap,
                "segments_sector_1": seg[0], "segments_sector_2": seg[1],
                "segments_sector_3": seg[2],
            }
            out.laps.append(Row(item, start, (start + s1, start + s1 + s2, start + duration)))
            if not out_lap and not in_lap:
                out.timed.append((start + duration, lap, duration))
            lap_starts.append(start)
            start += duration
        stint: Item = {**keys, "driver_number": number, "stint_number": stint_number,
                       "lap_start": first, "lap_end": lap, "compound": run.compound,
                       "tyre_age_at_start": run.tyre_age_at_start}
        out.stints.append(Row(stint, run.start, tuple(lap_starts[1:])))
    return out


def place_runs(lengths: list[float], window: tuple[float, float], rng: random.Random
               ) -> list[float]:
    """Start times for runs of the given lengths (seconds), in order, spread over the
    window with random garage time between them; runs may overrun a full window."""
    begin, end = window
    spare = max(0.0, end - begin - sum(lengths))
    weights = [rng.uniform(0.3, 1.0) for _ in range(len(lengths) + 1)]
    scale = spare / sum(weights)
    starts = []
    at = begin + weights[0] * scale
    for length, weight in zip(lengths, weights[1:], strict=True):
        starts.append(at)
        at += length + max(30.0, weight * scale)
    return starts
