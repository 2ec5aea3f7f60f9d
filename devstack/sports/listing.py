"""An ordered, keyset-paginated collection of pre-serialised items.

Every entry has a sort key that never changes, and a cursor remembers the key of the last
item it returned. That is what keeps the order stable for the life of a cursor even while
tests add, remove or update items between pages: nothing shifts the way offsets would.
Keys are ints for generated items; an item inserted between two others gets a Fraction
halfway between its neighbours, so there is always room and no existing key moves.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

from devstack.http_server import encode_json

Key = int | Fraction


# Compact JSON, the same encoder the shared admin routes use.
encode = encode_json


@dataclass(slots=True)
class Entry:
    key: Key
    item_id: str | None
    # The typed entity behind the entry, or None for an injected raw payload.
    item: Any
    # Exactly what is served, serialised once so a page is a string join.
    fragment: str
    updated_at: datetime | None
    valid: bool = True
    duplicate: bool = False

    def payload(self) -> Any:
        return json.loads(self.fragment)


class Listing:
    __slots__ = ("_entries", "_keys")

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        self._entries: list[Entry] = list(entries)
        self._keys: list[Key] = [entry.key for entry in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries)

    def key_for_position(self, position: int | None) -> Key:
        """A fresh key that sorts the new entry at ``position`` (None = after the last)."""
        count = len(self._keys)
        if position is None or position >= count:
            return math.floor(self._keys[-1]) + 1 if count else 0
        position = max(position, 0)
        after = self._keys[position]
        before = self._keys[position - 1] if position > 0 else after - 1
        return Fraction(before) + (Fraction(after) - Fraction(before)) / 2

    def insert(self, entry: Entry) -> None:
        index = bisect_right(self._keys, entry.key)
        if index > 0 and self._keys[index - 1] == entry.key:
            raise ValueError(f"duplicate listing key {entry.key}")
        self._entries.insert(index, entry)
        self._keys.insert(index, entry.key)

    def find(self, item_id: str) -> list[Entry]:
        return [entry for entry in self._entries if entry.item_id == item_id]

    def remove(self, item_id: str) -> int:
        kept = [entry for entry in self._entries if entry.item_id != item_id]
        removed = len(self._entries) - len(kept)
        if removed:
            self._entries = kept
            self._keys = [entry.key for entry in kept]
        return removed

    def remove_where(self, predicate: Callable[[Entry], bool]) -> list[Entry]:
        removed = [entry for entry in self._entries if predicate(entry)]
        if removed:
            self._entries = [entry for entry in self._entries if not predicate(entry)]
            self._keys = [entry.key for entry in self._entries]
        return removed

    def page(
        self,
        after: Key | None,
        limit: int,
        predicate: Callable[[Entry], bool] | None = None,
    ) -> tuple[list[Entry], bool]:
        """Up to ``limit`` matching entries after key ``after``, and whether more match.

        Looking one match ahead means the last page never carries a cursor to an empty page.
        """
        start = 0 if after is None else bisect_right(self._keys, after)
        found: list[Entry] = []
        for index in range(start, len(self._entries)):
            entry = self._entries[index]
            if predicate is not None and not predicate(entry):
                continue
            if len(found) == limit:
                return found, True
            found.append(entry)
        return found, False
