"""Set-based merge of validated rows into a typed table, with a change log.

Every change a merge makes is logged in `pipeline.changes` in the same transaction, so
`undo_changes` can put the table back exactly: an update or delete as one change per
row with its before-image, the rows a merge inserts as one change listing their keys
(`row_keys`). A row's first change in a run holds its pre-run state.

A table's key is one column or several (a composite key). The change log names a
row by `row_key` text: a single key's own text, or for a composite key the text of
the JSON array of its values, e.g. `[9158, 44, 3]` (`key_sql`).
"""

# ruff: noqa: S608 - queries here format in identifiers checked by TableSpec; values are $n

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import orjson

from pipeworks.db import Connection

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
# Column types as the catalog spells them (`timestamp with time zone`, `integer`, ...).
_TYPE_NAME = re.compile(r"[a-z][a-z0-9_ ]*(\([0-9, ]+\))?(\[\])?")
# Per process: a migration that changes a column type goes with a worker restart.
_column_types: dict[str, dict[str, str]] = {}
# jsonb writes a timestamptz with the session's UTC offset: a key part of that type is
# written as its UTC wall time instead, so a row's key text never depends on the session.
_TIMESTAMPTZ = "timestamp with time zone"


@dataclass(frozen=True)
class TableSpec:
    """Names that become SQL identifiers. They come from code, never from data, and
    are checked here, which is why the queries below may format them in.

    `key` is one column name (`"id"`) or a tuple of two or more (a composite key,
    e.g. `("session_key", "driver_number", "lap_number")`). The table must have a
    primary key or unique constraint on exactly those columns."""

    name: str                      # schema-qualified: "schema.table"
    key: str | tuple[str, ...]
    columns: tuple[str, ...]       # every column the pipeline writes, keys included
    # Lineage: the column that names the load which last wrote the row. Set on every
    # inserted or changed row, never compared (a re-run that changes nothing leaves it).
    lineage: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) and not (
            isinstance(self.key, tuple) and len(self.key) >= 2
            and all(isinstance(k, str) for k in self.key)
        ):
            raise ValueError(f"{self.name}: a key is a column name or a tuple of two or more,"
                             f" not {self.key!r}")
        parts = [*self.name.split("."), *self.keys, *self.columns,
                 *((self.lineage,) if self.lineage else ())]
        if self.name.count(".") != 1 or not all(_IDENTIFIER.fullmatch(p) for p in parts):
            raise ValueError(f"not plain SQL identifiers: {self.name} {self.key} {self.columns}")
        if len(set(self.keys)) != len(self.keys) or not set(self.keys) <= set(self.columns):
            raise ValueError(f"{self.name}: key {self.key} must be distinct columns of"
                             f" {self.columns}")
        if self.lineage is not None and self.lineage in self.columns:
            raise ValueError(f"{self.name}: lineage column {self.lineage} is written by the"
                             " merge, not by the rows")

    @property
    def keys(self) -> tuple[str, ...]:
        """The key's columns: one for a single key."""
        return (self.key,) if isinstance(self.key, str) else self.key

    @property
    def composite(self) -> bool:
        return not isinstance(self.key, str)

    @property
    def compared(self) -> tuple[str, ...]:
        """The columns a merge compares and updates: all but the key's."""
        return tuple(c for c in self.columns if c not in self.keys)


@dataclass
class MergeCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"inserted": self.inserted, "updated": self.updated,
                "unchanged": self.unchanged, "deleted": self.deleted}


def _tuple(alias: str, columns: Sequence[str]) -> str:
    return "(" + ", ".join(f"{alias}.{c}" for c in columns) + ")"


def _same_key(spec: TableSpec, left: str, right: str) -> str:
    """`left` and `right` name the same row: equal on every key column."""
    return " AND ".join(f"{left}.{k} = {right}.{k}" for k in spec.keys)


def key_sql(spec: TableSpec, alias: str, types: dict[str, str]) -> str:
    """SQL for a row's `row_key` text: the single key column itself (as it always was),
    or the text of a JSON array of the key's values for a composite key."""
    if not spec.composite:
        return f"{alias}.{spec.key}"
    parts = ", ".join(
        f"{alias}.{k} AT TIME ZONE 'UTC'" if types[k] == _TIMESTAMPTZ else f"{alias}.{k}"
        for k in spec.keys)
    return f"jsonb_build_array({parts})::text"


def _key_part_sql(spec: TableSpec, types: dict[str, str], index: int) -> str:
    """SQL for the `index`-th key value of a change log row `c`, typed like its column:
    the inverse of `key_sql`."""
    column = spec.keys[index]
    if not spec.composite:
        return f"c.row_key::{types[column]}"
    if types[column] == _TIMESTAMPTZ:
        return f"((c.row_key::jsonb ->> {index})::timestamp AT TIME ZONE 'UTC')"
    return f"(c.row_key::jsonb ->> {index})::{types[column]}"


def key_text(key: Hashable) -> str:
    """A readable text of a key as a stager names it (str, or a tuple for a composite
    key): a str as it is, a tuple as a JSON array. For text and integer parts it is the
    change log's `row_key`."""
    if isinstance(key, str):
        return key
    if isinstance(key, tuple):
        return json.dumps(list(key), ensure_ascii=False, default=_json_part)
    return str(key)


def _json_part(value: Any) -> str:
    return value.isoformat() if isinstance(value, date | time) else str(value)


async def column_types(conn: Connection, spec: TableSpec) -> dict[str, str]:
    """The SQL type of each of `spec.columns`, read from the catalog once per process."""
    types = _column_types.get(spec.name)
    if types is None:
        rows = await conn.fetch(
            "SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute"
            " WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
            spec.name)
        found = {r["attname"]: r["type"] for r in rows}
        missing = [c for c in spec.columns if c not in found]
        if missing:
            raise RuntimeError(f"{spec.name} has no columns {missing}")
        types = {c: found[c] for c in spec.columns}
        odd = [t for t in types.values() if not _TYPE_NAME.fullmatch(t)]
        if odd:
            raise RuntimeError(f"{spec.name}: unexpected column types {odd}")
        _column_types[spec.name] = types
    return types


async def merge_rows(
    conn: Connection,
    spec: TableSpec,
    rows: Sequence[tuple[Any, ...]],
    *,
    run_id: str,
    scope: str,
    scope_per_row: bool = False,
    delete_where: str | None = None,
    delete_args: Sequence[Any] = (),
    listed_keys: Collection[Any] = (),
    load_id: str | None = None,
) -> MergeCounts:
    """Upsert `rows` (unique by key) and, with `delete_where`, delete the rows in that
    scope whose keys the upstream no longer lists (`listed_keys`, a superset of the
    rows' keys: values of the key column, or for a composite key tuples of the key
    columns' values in `spec.key` order). `delete_where` is a predicate on alias `t`
    whose parameters start at $3. With `scope_per_row`, each row's change is logged
    under its own key text instead of `scope`. Must run inside a transaction.

    One statement does it all: the rows arrive as one array per column (no temp table,
    no COPY); one join finds what changes, and the same rows feed the change log (with
    their before-images) and the upsert; the rows no longer listed are change-logged
    and deleted. All of it sees one snapshot. The upserted keys are listed and the
    deleted ones are not, so the two never touch the same row.

    `load_id` goes into `spec.lineage` of every row inserted or changed."""
    if not conn.is_in_transaction():
        # The change log and the rows must commit together.
        raise RuntimeError("merge_rows must run inside a transaction")
    types = await column_types(conn, spec)
    cols = ", ".join(spec.columns)
    keys = ", ".join(spec.keys)
    first_key = spec.keys[0]  # NULL in a joined table row only when no row matched
    scope_args: tuple[Any, ...] = () if scope_per_row else (scope,)
    args: list[Any] = [run_id, *scope_args]
    row_scope = key_sql(spec, "c", types) if scope_per_row else "$2"
    deleting = delete_where is not None
    if deleting:
        if scope_per_row:
            raise ValueError("deletes are logged under the load's scope: not per row")
        args.extend(delete_args)
    first = len(args) + 1
    as_json = _as_json(spec, types, rows)
    if as_json is not None:
        incoming = f"""
            SELECT {", ".join(f"(r->>{i})::{types[c]} AS {c}" for i, c in enumerate(spec.columns))}
            FROM jsonb_array_elements(${first}::text::jsonb) AS r"""
        args.append(as_json)
    else:
        arrays = ", ".join(f"${first + i}::{types[c]}[]" for i, c in enumerate(spec.columns))
        incoming = f"SELECT * FROM unnest({arrays}) AS i({cols})"
        args.extend(list(column) for column in _columns(rows, len(spec.columns)))
    written_cols = cols
    stamped: list[str] = []
    if spec.lineage is not None:
        if load_id is None:
            raise ValueError(f"{spec.name} records lineage: merge_rows needs a load_id")
        args.append(load_id)
        written_cols = f"{cols}, {spec.lineage}"
        stamped = [f"{spec.lineage} = EXCLUDED.{spec.lineage}"]
    written_values = cols if spec.lineage is None else f"{cols}, ${len(args)}::text"
    if spec.compared:
        differs = f" OR {_tuple('t', spec.compared)} IS DISTINCT FROM {_tuple('i', spec.compared)}"
        assignments = ", ".join([*(f"{c} = EXCLUDED.{c}" for c in spec.compared), *stamped])
        on_conflict = (
            f"DO UPDATE SET {assignments}\n            WHERE {_tuple('t', spec.compared)}"
            f" IS DISTINCT FROM {_tuple('EXCLUDED', spec.compared)}")
    else:  # every column is a key column: a row is there or it is not
        differs = ""
        on_conflict = "DO NOTHING"
    # Inserts have no before-image: one change holds all their keys (in a scope per row,
    # each row is its own scope, so each keeps its own change).
    inserts_logged = f"""
        , inserts_logged AS (
            INSERT INTO pipeline.changes (run_id, scope, table_name, row_keys, op)
            SELECT $1, $2, '{spec.name}', array_agg({key_sql(spec, "c", types)}), 'insert'
            FROM changed c WHERE c.pipeworks_is_new
            HAVING count(*) > 0
        )"""
    deletion = ""
    if deleting:
        first_listed = len(args) + 1
        if spec.composite:  # one array per key column, like the rows
            args.extend(list(column) for column in _columns(
                _composite_keys(spec, listed_keys), len(spec.keys)))
        else:
            args.append(list(listed_keys))
        listed = ", ".join(f"${first_listed + i}::{types[k]}[]" for i, k in enumerate(spec.keys))
        deletion = f"""
        , gone AS (
            SELECT t.* FROM {spec.name} t
            WHERE ({delete_where}) AND NOT EXISTS (
                SELECT 1 FROM unnest({listed}) AS l({keys}) WHERE {_same_key(spec, "l", "t")})
        ), gone_logged AS (
            INSERT INTO pipeline.changes (run_id, scope, table_name, row_key, op, before)
            SELECT $1, $2, '{spec.name}', {key_sql(spec, "g", types)}, 'delete', to_jsonb(g)
            FROM gone g
            ON CONFLICT (run_id, table_name, row_key) DO NOTHING
        ), removed AS (
            DELETE FROM {spec.name} t USING gone g WHERE {_same_key(spec, "t", "g")}
            RETURNING 1
        )"""
    written = await conn.fetchrow(
        f"""
        WITH incoming AS ({incoming}
        ), changed AS (
            SELECT i.*, t.{first_key} IS NULL AS pipeworks_is_new,
                   CASE WHEN t.{first_key} IS NULL THEN NULL ELSE to_jsonb(t) END
                       AS pipeworks_before
            -- One key lookup per incoming row. LIMIT 1 (a key matches at most one row)
            -- keeps the planner from hashing the whole table for a plain join, which
            -- it prefers by its costs and which made a merge cost O(table), not O(rows).
            FROM incoming i LEFT JOIN LATERAL (
                SELECT * FROM {spec.name} t WHERE {_same_key(spec, "t", "i")} LIMIT 1
            ) t ON true
            WHERE t.{first_key} IS NULL{differs}
        ), logged AS (
            INSERT INTO pipeline.changes (run_id, scope, table_name, row_key, op, before)
            SELECT $1, {row_scope}, '{spec.name}', {key_sql(spec, "c", types)},
                   CASE WHEN c.pipeworks_is_new THEN 'insert' ELSE 'update' END,
                   c.pipeworks_before
            FROM changed c{"" if scope_per_row else " WHERE NOT c.pipeworks_is_new"}
            ON CONFLICT (run_id, table_name, row_key) DO NOTHING
        ){"" if scope_per_row else inserts_logged}, written AS (
            INSERT INTO {spec.name} AS t ({written_cols}) SELECT {written_values} FROM changed
            ON CONFLICT ({keys}) {on_conflict}
            RETURNING (xmax = 0) AS inserted
        ){deletion}
        SELECT (SELECT count(*) FILTER (WHERE inserted) FROM written) AS inserted,
               (SELECT count(*) FILTER (WHERE NOT inserted) FROM written) AS updated,
               {"(SELECT count(*) FROM removed)" if deleting else "0"} AS deleted
        """,
        *args,
    )
    assert written is not None
    counts = MergeCounts(inserted=written["inserted"], updated=written["updated"],
                         deleted=written["deleted"])
    counts.unchanged = len(rows) - counts.inserted - counts.updated
    return counts


# Column types whose values go to Postgres as JSON text exactly as asyncpg would send
# them (with the exceptions `_as_json` checks for): orjson writes strings, integers,
# booleans, dates, aware timestamps and uuids, and the shortest text that reads back as
# the same float.
_JSON_TYPES = frozenset({"text", "integer", "bigint", "smallint", "boolean", "date", _TIMESTAMPTZ,
                         "uuid", "double precision"})
_JSON_TYPE_PREFIXES = ("character varying",)


# Above this, rows go as typed arrays: jsonb holds at most 256 MB, arrays up to 1 GB.
_JSON_MAX_BYTES = 64 * 2**20


def _as_json(spec: TableSpec, types: dict[str, str], rows: Sequence[tuple[Any, ...]]
             ) -> str | None:
    """The rows as one JSON array of arrays, or None when they must go as typed arrays.

    One JSON text costs the worker a fifth of what typed arrays cost to encode (asyncpg
    checks each non-string element against the ABCs), and Postgres reads it in C
    (benchmarks/README.md). Only where it writes exactly what asyncpg would: other column
    types take the arrays, and so do values that would come out differently -- a
    non-finite float or a negative zero (jsonb reads numbers as `numeric`, which has
    neither), a date or timestamp in year 1 or 9999 (asyncpg writes the extremes as
    infinity), a timestamp without an offset (asyncpg reads it as local time) or with
    seconds in its offset (orjson drops them), a value orjson refuses (an integer beyond
    64 bits, a lone surrogate), and a batch too big for one jsonb value."""
    column_types = [types[c] for c in spec.columns]
    if not all(t in _JSON_TYPES or t.startswith(_JSON_TYPE_PREFIXES) for t in column_types):
        return None
    width = len(column_types)
    if any(len(row) != width for row in rows):
        raise ValueError(f"{spec.name}: every row has {width} values")
    for i, t in enumerate(column_types):
        exact = _JSON_EXACT.get(t)
        if exact is not None and not all(v is None or exact(v) for v in (r[i] for r in rows)):
            return None
    try:
        text = orjson.dumps(rows).decode()
    except orjson.JSONEncodeError:
        return None
    return text if len(text) <= _JSON_MAX_BYTES else None


def _plain_moment(value: Any) -> bool:
    """An aware datetime away from the extremes whose offset is whole minutes."""
    if not isinstance(value, datetime) or not 1 < value.year < 9999:
        return False
    offset = value.utcoffset()
    return offset is not None and offset.seconds % 60 == 0 and not offset.microseconds


def _plain_float(value: Any) -> bool:
    return math.isfinite(value) and bool(value or math.copysign(1.0, value) > 0)


def _plain_day(value: Any) -> bool:
    return isinstance(value, date) and 1 < value.year < 9999


# Per column type: whether JSON carries a (non-NULL) value exactly as asyncpg would.
_JSON_EXACT: dict[str, Callable[[Any], bool]] = {
    "double precision": _plain_float, _TIMESTAMPTZ: _plain_moment, "date": _plain_day}


def _composite_keys(spec: TableSpec, keys: Collection[Any]) -> list[tuple[Any, ...]]:
    width = len(spec.keys)
    for key in keys:
        if not (isinstance(key, tuple) and len(key) == width):
            raise ValueError(f"{spec.name}: a listed key is a tuple of {width} values,"
                             f" not {key!r}")
    return list(keys)


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[tuple[Any, ...]]:
    """Rows to columns: `[(a1, b1), (a2, b2)]` -> `[(a1, a2), (b1, b2)]`."""
    if not rows:
        return [() for _ in range(width)]
    return list(zip(*rows, strict=True))


async def undo_changes(
    conn: Connection, specs: Sequence[TableSpec], *, run_id: str, scope: str | None,
) -> dict[str, int]:
    """Put every row the run (or one scope of it) changed back to its before-image.
    `specs` in the order to undo (the reverse of the order they were written).
    Idempotent: restored changes are marked and not applied twice.

    A row's first change in the run holds its pre-run state: the run inserted it (an
    insert change, or one key of an insert change's `row_keys`: delete it) or it had a
    before-image (put it back). Later changes of the same row are ignored."""
    restored: dict[str, int] = {}
    scope_filter = "" if scope is None else " AND c.scope = $2"
    args: list[Any] = [run_id] if scope is None else [run_id, scope]
    for spec in specs:
        types = await column_types(conn, spec)
        logged_key = " AND ".join(
            f"t.{k} = {_key_part_sql(spec, types, i)}" for i, k in enumerate(spec.keys))
        first_changes = f"""
            WITH logged AS (
                SELECT c.id, c.scope, c.op, c.before, c.compensated_at,
                       coalesce(c.row_key, k.row_key) AS row_key
                FROM pipeline.changes c
                LEFT JOIN LATERAL unnest(c.row_keys) AS k(row_key) ON true
                WHERE c.run_id = $1 AND c.table_name = '{spec.name}'
            ), c AS (
                SELECT DISTINCT ON (row_key) * FROM logged ORDER BY row_key, id
            )"""
        pending = f"c.compensated_at IS NULL{scope_filter}"
        removed = await conn.fetchval(
            f"""{first_changes}, removed AS (
                DELETE FROM {spec.name} t USING c
                WHERE {pending} AND c.op = 'insert' AND {logged_key}
                RETURNING 1
            ) SELECT count(*) FROM removed
            """, *args)
        all_cols = await _table_columns(conn, spec.name)
        assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in all_cols if c not in spec.keys)
        on_conflict = f"DO UPDATE SET {assignments}" if assignments else "DO NOTHING"
        put_back = await conn.execute(
            f"""{first_changes}
            INSERT INTO {spec.name}
            SELECT (jsonb_populate_record(NULL::{spec.name}, c.before)).*
            FROM c WHERE {pending} AND c.op IN ('update', 'delete')
            ON CONFLICT ({", ".join(spec.keys)}) {on_conflict}
            """, *args)
        restored[spec.name] = int(removed) + int(put_back.split()[-1])
    await conn.execute(
        "UPDATE pipeline.changes c SET compensated_at = now()"
        f" WHERE c.run_id = $1{scope_filter} AND c.compensated_at IS NULL", *args)
    return restored


async def _table_columns(conn: Connection, table: str) -> list[str]:
    schema, name = table.split(".", 1)
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
        schema, name)
    return [r["column_name"] for r in rows]
