"""Stage a landed load: validate, dead-letter, dedup, merge — in one transaction.

The transaction also marks the load `staged` with its result, so a retried stage
activity (worker lost after commit) returns the same result and writes nothing.
"""

# No `from __future__ import annotations` here: Temporal's data converter resolves the
# annotations of these dataclasses each time it decodes one, and strings cost a compile.
import json
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from pipeworks import json_text
from pipeworks.db import Connection
from pipeworks.errors import PermanentError, SystemFailure
from pipeworks.landing import landed_load, mark_staged
from pipeworks.merge import MergeCounts, TableSpec, key_text, merge_rows


def envelope_items(body: bytes) -> list[Any]:
    """The items of a page body that wraps them: `{"items": [...], ...}`."""
    items = json_text.loads(body)["items"]
    if not isinstance(items, list):
        raise ValueError(f"a page's items are a JSON array, not {type(items).__name__}")
    return items


def array_items(body: bytes) -> list[Any]:
    """The items of a page body that is a bare JSON array: `[...]`."""
    items = json_text.loads(body)
    if not isinstance(items, list):
        raise ValueError(f"a page body is a JSON array here, not {type(items).__name__}")
    return items


@dataclass
class Verdict:
    """What a stager says of one item: a row to write, a reason it is invalid, or
    neither (a valid item that is out of this run's scope, e.g. a filter's).

    `key` names the row: the key column's value (a str) for a single key, or a tuple
    of the key columns' values in `spec.key` order for a composite key; None when an
    invalid item has none."""

    key: Hashable | None = None
    row: tuple[Any, ...] | None = None
    invalid_reason: str | None = None


class Stager(Protocol):
    entity: str
    spec: TableSpec
    # Log each row's change under its own key (when each row is itself a scope) instead
    # of the load's scope, so that undoing one scope restores that row too.
    scope_per_row: bool
    # Which value of a row names it for people (activity summaries), if any.
    label_index: int | None

    async def prepare(self, conn: Connection) -> None: ...

    def items_of(self, body: bytes) -> list[Any]:
        """The items of a landed page body, for judging one by one; in one line with a
        helper of this module: `items_of = staticmethod(envelope_items)` (or
        `array_items`)."""
        ...

    def judge(self, item: Any) -> Verdict: ...

    def judge_page(self, body: bytes) -> list[Verdict] | None:
        """Every item's verdict when the whole page is valid (a fast path), or None:
        then each item is judged on its own."""
        ...

    def delete_scope(self) -> tuple[str, Sequence[Any]] | None:
        """Predicate on alias `t` (params from $3) of rows a full sync owns, or None."""
        ...

    async def finish(self, conn: Connection, outcome: "StageOutcome") -> None:
        """Runs in the stage's transaction after the merge: state that must commit with
        the rows and never ahead of them (e.g. a stream's watermark)."""
        ...


@dataclass
class StageOutcome:
    load_id: str
    entity: str
    fetched: int = 0
    staged: int = 0
    invalid: int = 0
    duplicates: int = 0
    out_of_scope: int = 0
    merge: dict[str, int] = field(default_factory=lambda: MergeCounts().as_dict())
    keys: list[str] = field(default_factory=list)  # a composite key as its `key_text`
    labels: dict[str, str] = field(default_factory=dict)  # key -> name, with `keys`
    errors: dict[str, int] = field(default_factory=dict)  # absorbed by retries
    # The load had been staged before (a retried attempt): this is the stored result.
    already_staged: bool = False


def _sanitize(value: Any) -> Any:
    """jsonb cannot hold NUL either: keep the dead letter, mark where NUL was."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_sanitize(v) for v in value]
    if isinstance(value, dict):
        return {_sanitize(k): _sanitize(v) for k, v in value.items()}
    return value


async def stage_load(
    conn: Connection,
    stager: Stager,
    *,
    load_id: str,
    run_id: str,
    scope: str,
    lock_key: str,
    full_sync: bool,
    keep_pages: bool = False,
    return_keys: bool = False,
    landed_pages: tuple[int, int] | None = None,
) -> StageOutcome:
    """`landed_pages`: (pages, items) when the caller landed every page of a load that is
    still `fetching` (not marked landed): this transaction marks it landed and staged at
    once, and ignores pages from a longer earlier attempt."""
    async with conn.transaction():
        # Serializes writers of one scope across runs and workers; the xact
        # variant because a pooled connection's reset would drop a session lock.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", lock_key)
        # The load row (locked) and its landed pages, in one round trip.
        landed = await landed_load(conn, load_id)
        load = landed[0] if landed else None
        # Marked landed here, with the caller's counts; else its row has them already.
        finishing = landed_pages if load is not None and load["status"] == "fetching" else None
        if load is None or (load["status"] == "fetching" and finishing is None):
            raise SystemFailure(f"load {load_id} is not landed yet")
        if finishing is not None:
            pages = finishing[0]
            landed = [p for p in landed if p["page_no"] is None or p["page_no"] < pages]
            if [p["page_no"] for p in landed if p["page_no"] is not None] != list(range(pages)):
                # Postgres lost pages not yet flushed (they landed unflushed): the
                # retried fetch lands them again after the last one it finds.
                raise SystemFailure(f"load {load_id}: not all of its {pages} pages are there")
        if load["status"] == "compensated":
            raise PermanentError(f"load {load_id} belongs to undone changes: not staging it")
        if load["status"] == "staged":
            return StageOutcome(**{**load["stage_result"], "already_staged": True})

        await stager.prepare(conn)
        outcome = StageOutcome(load_id=load_id, entity=stager.entity)
        # Unique by key (the last occurrence wins): an upsert cannot touch a row twice.
        rows: dict[Hashable, tuple[Any, ...]] = {}
        dead: list[tuple[Any, ...]] = []
        # Everything the upstream still lists, valid or not: a listed item that is
        # invalid this time keeps its old row instead of being deleted as gone.
        listed: set[Hashable] = set()
        # TEMPORARY: a stager without `items_of` gets the envelope. Goes once every
        # stager defines it: then `stager.items_of`.
        items_of = getattr(stager, "items_of", envelope_items)
        unkeyed_invalid = False
        for page in landed:
            if page["body"] is None:
                continue  # a load of no pages
            fast = stager.judge_page(page["body"])
            if fast is not None:
                outcome.fetched += len(fast)
                for verdict in fast:
                    assert verdict.key is not None
                    listed.add(verdict.key)
                    if verdict.row is None:
                        outcome.out_of_scope += 1
                        continue
                    if verdict.key in rows:
                        outcome.duplicates += 1
                    rows[verdict.key] = verdict.row  # the last occurrence wins
                continue
            for index, item in enumerate(items_of(page["body"])):
                outcome.fetched += 1
                verdict = stager.judge(item)
                if verdict.key is not None:
                    listed.add(verdict.key)
                if verdict.invalid_reason is not None:
                    unkeyed_invalid = unkeyed_invalid or verdict.key is None
                    dead.append((run_id, stager.entity, json.dumps(_sanitize(item)),
                                 verdict.invalid_reason, load_id, page["page_no"], index))
                elif verdict.row is None:
                    outcome.out_of_scope += 1
                else:
                    assert verdict.key is not None
                    if verdict.key in rows:
                        outcome.duplicates += 1
                    rows[verdict.key] = verdict.row  # the last occurrence wins
        outcome.invalid = len(dead)
        outcome.staged = len(rows)
        if dead:
            await conn.executemany(
                "INSERT INTO pipeline.dead_letters"
                " (run_id, entity, payload, reason, load_id, page_no, item_index)"
                " VALUES ($1, $2, $3::text::jsonb, $4, $5, $6, $7)"
                " ON CONFLICT (load_id, page_no, item_index) DO NOTHING",
                dead)
        # An invalid item without an id could be any row: then nothing counts as gone.
        deletion = stager.delete_scope() if full_sync and not unkeyed_invalid else None
        counts = await merge_rows(
            conn, stager.spec, list(rows.values()), run_id=run_id, scope=scope,
            scope_per_row=stager.scope_per_row,
            delete_where=deletion[0] if deletion else None,
            delete_args=deletion[1] if deletion else (),
            listed_keys=listed,
            load_id=load_id,
        )
        outcome.merge = counts.as_dict()
        if return_keys:
            outcome.keys = [key_text(key) for key in rows]
            if stager.label_index is not None:
                outcome.labels = {key_text(key): str(values[stager.label_index])
                                  for key, values in rows.items()}
        await stager.finish(conn, outcome)
        await mark_staged(conn, load_id, asdict(outcome), drop_pages=not keep_pages,
                          landed=finishing)
        return outcome
