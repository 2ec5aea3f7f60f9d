"""Weather: one row a minute through a session, drifting smoothly from the circuit's
climate (facts.CLIMATE). Rain is a state (0/1) over given spans, as OpenF1's is."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from devstack.f1 import facts
from devstack.f1.records import Row, ts

STEP_S = 60.0


def weather_rows(
    keys: dict[str, int],
    circuit_id: str,
    start: float,
    end: float,
    rng: random.Random,
    rain: Sequence[tuple[float, float]] = (),
) -> list[Row]:
    """Rows from ``start`` to ``end``; ``rain`` lists (from, to) spans with rainfall 1."""
    air, humidity, pressure = facts.CLIMATE.get(circuit_id, (22.0, 55.0, 1010.0))
    air += rng.uniform(-3.0, 3.0)
    track_over_air = rng.uniform(6.0, 16.0)
    wind_direction = rng.randrange(360)
    wind = rng.uniform(0.5, 4.0)
    phase = rng.uniform(0.0, math.tau)
    # OpenF1's readings are not aligned to the minute.
    at = start + rng.uniform(5.0, 55.0)
    rows = []
    step = 0
    while at <= end:
        drift = math.sin(phase + step / 40.0)
        raining = any(low <= at < high for low, high in rain)
        track = air + track_over_air * (0.4 if raining else 1.0) - 0.02 * step
        wind_direction = (wind_direction + rng.randint(-8, 8)) % 360
        rows.append(Row({
            **keys,
            "date": ts(at),
            "air_temperature": round(air + 0.8 * drift, 1),
            "track_temperature": round(track + 1.5 * drift, 1),
            "humidity": round(min(100.0, humidity + (25.0 if raining else 0.0) - 2 * drift), 1),
            "pressure": round(pressure + 0.3 * drift, 1),
            "rainfall": 1 if raining else 0,
            "wind_direction": wind_direction,
            "wind_speed": round(max(0.0, wind + rng.uniform(-0.4, 0.4)), 1),
        }, at))
        step += 1
        at += STEP_S + rng.uniform(-0.5, 0.5)
    return rows
