"""Builders for the invalid items the contract warns about ("the upstream is not trusted").

Each builder starts from a valid wire item and breaks exactly one thing, so a client test can
tell which rule rejected it. Type errors are chosen to survive lenient parsing: a number
given as "3" would be coerced by many parsers, "three" will not.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

InvalidKind = Literal[
    "missing_field",
    "wrong_type",
    "bad_timestamp",
    "naive_timestamp",
    "unknown_status",
    "foreign_team",
    "null_id",
    "not_an_object",
]
Resource = Literal["games", "teams"]

INVALID_KINDS: dict[Resource, frozenset[str]] = {
    "games": frozenset(get_args(InvalidKind)),
    "teams": frozenset({"missing_field", "wrong_type", "null_id", "not_an_object"}),
}

_DEFAULT_MISSING: dict[Resource, str] = {"games": "home_team_id", "teams": "name"}


def make_invalid(
    resource: Resource,
    kind: InvalidKind,
    template: dict[str, Any],
    *,
    field: str | None = None,
    foreign_team_id: str = "T-unknown",
) -> Any:
    """A copy of ``template`` broken by ``kind``; ``field`` picks the field to drop."""
    if kind not in INVALID_KINDS[resource]:
        raise ValueError(f"invalid kind {kind!r} does not apply to {resource}")
    item = dict(template)
    if kind == "missing_field":
        item.pop(field or _DEFAULT_MISSING[resource], None)
    elif kind == "wrong_type":
        if resource == "games":
            item["status"] = "final"
            item["home_score"] = "three"
        else:
            item["name"] = 42
    elif kind == "bad_timestamp":
        item["scheduled_at"] = "31/02/2025 19:30"
    elif kind == "naive_timestamp":
        item["updated_at"] = str(item["updated_at"])[:19]
    elif kind == "unknown_status":
        item["status"] = "abandoned"
    elif kind == "foreign_team":
        item["away_team_id"] = foreign_team_id
    elif kind == "null_id":
        item["id"] = None
    elif kind == "not_an_object":
        return f"<{resource[:-1]} {item.get('id')}>"
    return item
