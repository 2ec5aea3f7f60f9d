"""The ``drivers`` rows of a session, from the weekend's entrants."""

from __future__ import annotations

import random
from collections.abc import Iterable

from devstack.f1 import facts
from devstack.f1.records import Item, Row
from devstack.f1.vendored import Entrant

# The name and team fields the contract allows to be null.
NULLABLE = ("broadcast_name", "full_name", "first_name", "last_name", "name_acronym",
            "team_name", "team_colour", "headshot_url")


def driver_item(keys: dict[str, int], entrant: Entrant) -> Item:
    team_name, colour = facts.TEAMS.get(entrant.team_id, (entrant.team_id, "FFFFFF"))
    return {
        **keys,
        "driver_number": entrant.number,
        "broadcast_name": f"{entrant.first_name[0]} {entrant.last_name.upper()}",
        "full_name": f"{entrant.first_name} {entrant.last_name.upper()}",
        "first_name": entrant.first_name,
        "last_name": entrant.last_name,
        "name_acronym": entrant.acronym,
        "team_name": team_name,
        "team_colour": colour,
        "headshot_url": None,
    }


def driver_rows(keys: dict[str, int], entrants: Iterable[Entrant], appears: float,
                rng: random.Random, null_share: float = 0.0) -> list[Row]:
    """``null_share``: the chance that this session shows the contract's quirk of null
    name and team fields for most drivers (all but two)."""
    items = [driver_item(keys, entrant) for entrant in entrants]
    if items and rng.random() < null_share:
        keep = set(rng.sample(range(len(items)), min(2, len(items))))
        for index, item in enumerate(items):
            if index not in keep:
                item.update(dict.fromkeys(NULLABLE))
    return [Row(item, appears) for item in items]
