"""Set-based merge of validated rows into a typed table, with a change log.

Every change a merge makes records the row's before-image in `pipeline.changes`
in the same transaction, so `undo_changes` can put the table back exactly.
Only a run's first change to a row is recorded: that image is the pre-run state.
"""

# ruff: noqa: S608 - queries here format in identifiers checked by TableSpec; values are $n

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from pipeworks.db import Connection

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
# Column types as the catalog spells them (`timestamp with time zone`, `integer`, ...).
_TYPE_NAME = re.compile(r"[a-z][a-z0-9_ ]*(\([0-9, ]+\))?(\[\])?")
# Per process: a migration that changes a column type goes with a worker restart.
_column_types: dict[str, dict[str, str]] = {}


@dataclass(frozen=True)
class TableSpec:
    """Names that become SQL identifiers. They come from code, never from data, and
    are checked here, which is why the queries below may format them in."""

    name: str                  # schema-qualified, e.g. "sports.games"
    key: str
    columns: tuple[str, ...]   # every column the pipeline writes, key included

    def __post_init__(self) -> None:
        parts = [*self.name.split("."), self.key, *self.columns]
        if self.name.count(".") != 1 or not all(_IDENTIFIER.fullmatch(p) for p in parts):
            raise ValueError(f"not plain SQL identifiers: {self.name} {self.key} {self.columns}")

    @property
    def compared(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c != self.key)


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
    listed_keys: Collection[str] = (),
) -> MergeCounts:
    """Upsert `rows` (unique by key) and, with `delete_where`, delete the rows in that
    scope whose keys the upstream no longer lists (`listed_keys`, a superset of the
    rows' keys). `delete_where` is a predicate on alias `t` whose parameters start
    at $3. Must run inside a transaction.

    One statement does it all: the rows arrive as one array per column (no temp table,
    no COPY); one join finds what changes, and the same rows feed the change log (with
    their before-images) and the upsert; the rows no longer listed are change-logged
    and deleted. All of it sees one snapshot. The upserted keys are listed and the
    deleted ones are not, so the two never touch the same row."""
    if not conn.is_in_transaction():
        # The change log and the rows must commit together.
        raise RuntimeError("merge_rows must run inside a transaction")
    types = await column_types(conn, spec)
    cols = ", ".join(spec.columns)
    scope_args: tuple[Any, ...] = () if scope_per_row else (scope,)
    args: list[Any] = [run_id, *scope_args]
    row_scope = f"c.{spec.key}" if scope_per_row else "$2"
    deleting = delete_where is not None
    if deleting:
        if scope_per_row:
            raise ValueError("deletes are logged under the load's scope: not per row")
        args.extend(delete_args)
    first = len(args) + 1
    arrays = ", ".join(f"${first + i}::{types[c]}[]" for i, c in enumerate(spec.columns))
    args.extend(list(column) for column in _columns(rows, len(spec.columns)))
    differs = f"{_tuple('t', spec.compared)} IS DISTINCT FROM {_tuple('i', spec.compared)}"
    assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in spec.compared)
    deletion = ""
    if deleting:
        args.append(list(listed_keys))
        deletion = f"""
        , gone AS (
            SELECT t.* FROM {spec.name} t
            WHERE ({delete_where}) AND NOT EXISTS (
                SELECT 1 FROM unnest(${len(args)}::text[]) AS l(key) WHERE l.key = t.{spec.key})
        ), gone_logged AS (
            INSERT INTO pipeline.changes (run_id, scope, table_name, row_key, op, before)
            SELECT $1, $2, '{spec.name}', g.{spec.key}, 'delete', to_jsonb(g) FROM gone g
            ON CONFLICT (run_id, table_name, row_key) DO NOTHING
        ), removed AS (
            DELETE FROM {spec.name} t USING gone g WHERE t.{spec.key} = g.{spec.key}
            RETURNING 1
        )"""
    written = await conn.fetchrow(
        f"""
        WITH incoming AS (
            SELECT * FROM unnest({arrays}) AS i({cols})
        ), changed AS (
            SELECT i.*, t.{spec.key} IS NULL AS pipeworks_is_new,
                   CASE WHEN t.{spec.key} IS NULL THEN NULL ELSE to_jsonb(t) END
                       AS pipeworks_before
            FROM incoming i LEFT JOIN {spec.name} t ON t.{spec.key} = i.{spec.key}
            WHERE t.{spec.key} IS NULL OR {differs}
        ), logged AS (
            INSERT INTO pipeline.changes (run_id, scope, table_name, row_key, op, before)
            SELECT $1, {row_scope}, '{spec.name}', c.{spec.key},
                   CASE WHEN c.pipeworks_is_new THEN 'insert' ELSE 'update' END,
                   c.pipeworks_before
            FROM changed c
            ON CONFLICT (run_id, table_name, row_key) DO NOTHING
        ), written AS (
            INSERT INTO {spec.name} AS t ({cols}) SELECT {cols} FROM changed
            ON CONFLICT ({spec.key}) DO UPDATE SET {assignments}
            WHERE {_tuple('t', spec.compared)} IS DISTINCT FROM {_tuple('EXCLUDED', spec.compared)}
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
    Idempotent: restored changes are marked and not applied twice."""
    restored: dict[str, int] = {}
    scope_filter = "" if scope is None else " AND c.scope = $2"
    args: list[Any] = [run_id] if scope is None else [run_id, scope]
    pending = (f"c.run_id = $1{scope_filter} AND c.compensated_at IS NULL")
    for spec in specs:
        removed = await conn.fetchval(
            f"""
            WITH removed AS (
                DELETE FROM {spec.name} t USING pipeline.changes c
                WHERE {pending} AND c.table_name = '{spec.name}' AND c.op = 'insert'
                  AND t.{spec.key} = c.row_key
                RETURNING 1
            ) SELECT count(*) FROM removed
            """, *args)
        all_cols = await _table_columns(conn, spec.name)
        assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in all_cols if c != spec.key)
        put_back = await conn.execute(
            f"""
            INSERT INTO {spec.name}
            SELECT (jsonb_populate_record(NULL::{spec.name}, c.before)).*
            FROM pipeline.changes c
            WHERE {pending} AND c.table_name = '{spec.name}' AND c.op IN ('update', 'delete')
            ON CONFLICT ({spec.key}) DO UPDATE SET {assignments}
            """, *args)
        restored[spec.name] = int(removed) + int(put_back.split()[-1])
    await conn.execute(
        f"UPDATE pipeline.changes c SET compensated_at = now() WHERE {pending}", *args)
    return restored


async def _table_columns(conn: Connection, table: str) -> list[str]:
    schema, name = table.split(".", 1)
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
        schema, name)
    return [r["column_name"] for r in rows]
