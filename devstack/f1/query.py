"""The query syntax of the F1 timing contract (contracts/f1-api.md, "Query syntax"), as
a server reads it: which items of an endpoint a query string selects.

- A filter is `<field><op><value>`, the operator part of the key: `date>=v` arrives as
  key `date>` and value `v`, `date<=v` as `date<` and `v`; a strict bound carries the
  whole filter in the key with an empty value (`date<v`). Keys are percent-decoded
  first, and an unencoded `+` is a space.
- Values are read as, in this order: `true`/`false`, integer, decimal, timestamp,
  otherwise string; `gmt_offset` and `team_colour` always as strings. A timestamp
  without an offset is UTC; a date-only value is widened to whole days.
- The same field repeated: equalities are OR-ed, a lower plus an upper bound form an
  interval, several intervals are OR-ed; different fields are AND-ed. A field the item
  does not have matches nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

# Compared as strings whatever they look like ("+01:00:00" is not a number).
STRING_FIELDS = frozenset({"gmt_offset", "team_colour"})

Value = bool | int | Decimal | datetime | str


class QueryError(ValueError):
    """A query string that is not a list of filters."""


@dataclass(frozen=True)
class Bound:
    value: Value
    inclusive: bool


@dataclass
class FieldFilter:
    """Every condition on one field: OR-ed equalities and OR-ed intervals."""

    equals: list[Value] = field(default_factory=list)
    intervals: list[tuple[Bound | None, Bound | None]] = field(default_factory=list)

    def lower(self, bound: Bound) -> None:
        self.intervals.append((bound, None))

    def upper(self, bound: Bound) -> None:
        # An upper bound closes the latest interval still open above (`a<=x<=b`).
        for i in range(len(self.intervals) - 1, -1, -1):
            low, high = self.intervals[i]
            if high is None and low is not None:
                self.intervals[i] = (low, bound)
                return
        self.intervals.append((None, bound))

    def matches(self, value: Any) -> bool:
        return (any(_equal(value, wanted) for wanted in self.equals)
                or any(_within(value, low, high) for low, high in self.intervals))


@dataclass
class Query:
    fields: dict[str, FieldFilter] = field(default_factory=dict)

    def matches(self, item: Mapping[str, Any]) -> bool:
        return all(name in item and condition.matches(item[name])
                   for name, condition in self.fields.items())

    def select(self, items: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        return [item for item in items if self.matches(item)]

    def values_of(self, name: str) -> list[Value]:
        """The equalities on `name` (e.g. the `session_key`s a query names)."""
        condition = self.fields.get(name)
        return list(condition.equals) if condition is not None else []


def parse_query(raw: str) -> Query:
    """The filters of a raw query string (`a=1&date%3E=...&date<...`)."""
    query = Query()
    for key, value in parse_qsl(raw, keep_blank_values=True, strict_parsing=False):
        name, op, text = _split(key, value)
        if not name:
            raise QueryError(f"a filter without a field name: {key!r}")
        condition = query.fields.setdefault(name, FieldFilter())
        typed, whole_day = _typed_bound(name, text)
        if op == "=":
            if whole_day is not None:  # the whole day
                condition.intervals.append((Bound(whole_day[0], True),
                                            Bound(whole_day[1], False)))
            else:
                condition.equals.append(typed)
            continue
        lower = op in (">", ">=")
        if whole_day is not None:  # a date-only bound covers whole days
            start, end = whole_day
            if op == ">":
                condition.lower(Bound(end, True))
            elif op == ">=":
                condition.lower(Bound(start, True))
            elif op == "<":
                condition.upper(Bound(start, False))
            else:
                condition.upper(Bound(end, False))
            continue
        bound = Bound(typed, op.endswith("="))
        if lower:
            condition.lower(bound)
        else:
            condition.upper(bound)
    return query


def _split(key: str, value: str) -> tuple[str, str, str]:
    """(field, operator, value text) of one decoded query pair."""
    if key.endswith((">", "<")) and value != "":
        return key[:-1], key[-1] + "=", value  # `date>=v` arrived as key `date>`
    for op in (">", "<"):
        if op in key and value == "":
            name, _, text = key.partition(op)  # `date<v`: the whole filter in the key
            return name, op, text
    return key, "=", value


def _typed_bound(name: str, text: str) -> tuple[Value, tuple[datetime, datetime] | None]:
    """A bound's value, and for a date-only value the whole day it stands for."""
    if name not in STRING_FIELDS:
        day = _date_only(text)
        if day is not None:
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start, (start, start + timedelta(days=1))
    return _typed(name, text), None


def _typed(name: str, text: str) -> Value:
    if name in STRING_FIELDS:
        return text
    if text in ("true", "false"):
        return text == "true"
    for parse in _PARSERS:
        try:
            return parse(text)
        except (ValueError, InvalidOperation):
            continue
    return text


def _integer(text: str) -> int:
    if not text.lstrip("-").isdigit():
        raise ValueError(text)
    return int(text)


def _decimal(text: str) -> Decimal:
    number = Decimal(text)
    if not number.is_finite():
        raise ValueError(text)  # "NaN" and "Infinity" stay strings
    return number


def _timestamp(text: str) -> datetime:
    if len(text) < 11 or ("T" not in text and " " not in text[10:11]):
        raise ValueError(text)  # needs a date and a time
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


_PARSERS: list[Callable[[str], Value]] = [_integer, _decimal, _timestamp]


def _date_only(text: str) -> date | None:
    if len(text) != 10:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _comparable(item_value: Any, wanted: Value) -> tuple[Any, Any] | None:
    """Both sides in one type, or None when they cannot be compared (no match)."""
    if isinstance(wanted, bool):
        return (item_value, wanted) if isinstance(item_value, bool) else None
    if isinstance(item_value, bool):
        return None
    if isinstance(wanted, int | Decimal):
        if isinstance(item_value, int | float):
            return Decimal(str(item_value)), Decimal(wanted)
        return None
    if isinstance(wanted, datetime):
        if isinstance(item_value, str):
            try:
                moment = datetime.fromisoformat(item_value)
            except ValueError:
                return None
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)), wanted
        return None
    if isinstance(item_value, str):
        return item_value, wanted
    return None


def _equal(item_value: Any, wanted: Value) -> bool:
    pair = _comparable(item_value, wanted)
    return pair is not None and pair[0] == pair[1]


def _within(item_value: Any, low: Bound | None, high: Bound | None) -> bool:
    for bound, above in ((low, True), (high, False)):
        if bound is None:
            continue
        pair = _comparable(item_value, bound.value)
        if pair is None:
            return False
        value, limit = pair
        if above and not (value > limit or (bound.inclusive and value == limit)):
            return False
        if not above and not (value < limit or (bound.inclusive and value == limit)):
            return False
    return True
