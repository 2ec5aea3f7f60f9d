"""Invalid items: copies of real items broken the ways an untrusted upstream breaks them
(contract: "An item that does not match its entity is invalid; a response can mix valid
and invalid items"). An invalid item is added beside the valid one it copies, so the
valid data stay complete."""

from __future__ import annotations

import random
from typing import Any, Final

from devstack.f1.records import ENDPOINTS, Item

KINDS: Final = (
    "lap_number_zero",       # laps: lap_number 0 (must be >= 1)
    "driver_number_string",  # driver_number "44" instead of 44
    "position_string",       # position: "P1" instead of 1
    "missing_key",           # a natural-key field left out
    "bad_date",              # the date field not a timestamp
    "not_an_object",         # a bare string in the array
)


def kinds_for(endpoint: str) -> list[str]:
    spec = ENDPOINTS[endpoint]
    kinds = ["missing_key", "not_an_object"]
    if "driver_number" in spec.natural_key:
        kinds.append("driver_number_string")
    if endpoint == "laps":
        kinds.append("lap_number_zero")
    if endpoint in ("position", "session_result", "starting_grid"):
        kinds.append("position_string")
    if spec.date_field is not None:
        kinds.append("bad_date")
    return kinds


def corrupt(endpoint: str, item: Item, kind: str, rng: random.Random) -> Any:
    if kind not in kinds_for(endpoint):
        raise ValueError(f"{kind!r} does not apply to {endpoint}; choose from "
                         f"{kinds_for(endpoint)}")
    broken = dict(item)
    if kind == "lap_number_zero":
        broken["lap_number"] = 0
    elif kind == "driver_number_string":
        broken["driver_number"] = str(broken.get("driver_number"))
    elif kind == "position_string":
        broken["position"] = f"P{broken.get('position') or 1}"
    elif kind == "missing_key":
        fields = [name for name in ENDPOINTS[endpoint].natural_key if name in broken]
        broken.pop(rng.choice(fields), None)
    elif kind == "bad_date":
        date_field = ENDPOINTS[endpoint].date_field
        assert date_field is not None
        broken[date_field] = "yesterday afternoon"
    else:
        return f"<{endpoint} item unavailable>"
    return broken
