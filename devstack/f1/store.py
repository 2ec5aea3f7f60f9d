"""The upstream's index: one table per (endpoint, session), rows sorted by their date
field so a date window is two bisections, not a scan; rows found by natural key for
corrections ("latest version": the record changes in place, its key stays)."""

from __future__ import annotations

import copy
import threading
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Mapping
from typing import Any

from devstack.f1.records import Endpoint, Item, Row, epoch


class Table:
    def __init__(self, endpoint: Endpoint, rows: Iterable[Row]) -> None:
        self.endpoint = endpoint
        self._lock = threading.Lock()
        self._dated: list[tuple[float, int, Row]] = []
        self._undated: list[Row] = []
        self._by_key: dict[tuple[Any, ...], Row] = {}
        # Per corrected row its item and marks as built; None for a row added later.
        self._originals: dict[int, tuple[Item, tuple[float, ...]] | None] = {}
        self._sequence = 0
        for row in rows:
            self._insert(row)
        self._dated.sort(key=lambda entry: (entry[0], entry[1]))
        self._times = [entry[0] for entry in self._dated]

    def __len__(self) -> int:
        return len(self._dated) + len(self._undated)

    def key_of(self, item: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(item.get(name) for name in self.endpoint.natural_key)

    def _date(self, row: Row) -> float | None:
        field = self.endpoint.date_field
        value = row.item.get(field) if field else None
        return epoch(value) if isinstance(value, str) else None

    def _insert(self, row: Row) -> None:
        self._by_key[self.key_of(row.item)] = row
        when = self._date(row)
        self._sequence += 1
        if when is None:
            self._undated.append(row)
        else:
            self._dated.append((when, self._sequence, row))

    def rows(self, low: float | None = None, high: float | None = None) -> list[Row]:
        """Rows whose date is within [low, high] (None: unbounded), and every undated
        row (a date filter then rejects those: they have no date to match)."""
        with self._lock:
            start = 0 if low is None else bisect_left(self._times, low)
            stop = len(self._times) if high is None else bisect_right(self._times, high)
            return [entry[2] for entry in self._dated[start:stop]] + list(self._undated)

    def find(self, key: Mapping[str, Any]) -> Row:
        """The row whose natural key has these values (fields not given: any)."""
        with self._lock:
            matches = [row for row in self._by_key.values()
                       if all(row.item.get(name) == value for name, value in key.items())]
        if len(matches) != 1:
            raise KeyError(f"{self.endpoint.name}: {len(matches)} rows match {dict(key)}")
        return matches[0]

    def correct(self, key: Mapping[str, Any], changes: Mapping[str, Any]) -> Item:
        """Change a record in place; it keeps its natural key unless ``changes`` name it."""
        row = self.find(key)
        with self._lock:
            self._originals.setdefault(id(row), (copy.deepcopy(row.item), row.marks))
            old_key = self.key_of(row.item)
            row.item = {**row.item, **changes}
            # A corrected record is complete: the live replay shows it as it now is.
            row.marks = ()
            self._rekey(row, old_key)
            return dict(row.item)

    def add_built(self, row: Row) -> None:
        """Add a row while building (part of the table as built: a reset keeps it)."""
        with self._lock:
            self._insert(row)
            self._resort()

    def add(self, row: Row) -> None:
        with self._lock:
            self._originals[id(row)] = None  # a reset removes it again
            self._insert(row)
            self._resort()

    def reset(self) -> None:
        """Undo every correction and addition since the table was built."""
        with self._lock:
            if not self._originals:
                return
            for entries in (list(self._dated), [(0.0, 0, r) for r in self._undated]):
                for _, _, row in entries:
                    if id(row) not in self._originals:
                        continue
                    original = self._originals[id(row)]
                    if original is None:
                        self._remove(row)
                    else:
                        row.item, row.marks = original
            self._originals.clear()
            self._by_key = {self.key_of(row.item): row for row in self._all()}
            self._resort()

    def _all(self) -> list[Row]:
        return [entry[2] for entry in self._dated] + self._undated

    def _remove(self, row: Row) -> None:
        self._dated = [entry for entry in self._dated if entry[2] is not row]
        self._undated = [r for r in self._undated if r is not row]

    def _rekey(self, row: Row, old_key: tuple[Any, ...]) -> None:
        self._by_key.pop(old_key, None)
        self._by_key[self.key_of(row.item)] = row
        self._remove(row)
        when = self._date(row)
        self._sequence += 1
        if when is None:
            self._undated.append(row)
        else:
            insort(self._dated, (when, self._sequence, row), key=lambda e: (e[0], e[1]))
        self._times = [entry[0] for entry in self._dated]

    def _resort(self) -> None:
        rows = self._all()
        self._dated, self._undated = [], []
        for row in rows:
            when = self._date(row)
            self._sequence += 1
            if when is None:
                self._undated.append(row)
            else:
                self._dated.append((when, self._sequence, row))
        self._dated.sort(key=lambda entry: (entry[0], entry[1]))
        self._times = [entry[0] for entry in self._dated]
