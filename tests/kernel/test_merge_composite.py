"""merge_rows, the change log and undo_changes with composite keys (and single keys as
they always were), and stage_load with a stager whose page bodies are bare JSON arrays.
Against a real Postgres, on throwaway tables in schema kernel_test."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from devstack.postgres import EmbeddedPostgres
from pipeworks.db import Connection, connect, migrate
from pipeworks.landing import begin_load, finish_load, land_page
from pipeworks.merge import MergeCounts, TableSpec, merge_rows, undo_changes
from pipeworks.staging import StageOutcome, Verdict, array_items, envelope_items, stage_load

LAP_COLUMNS = ("session_key", "driver_number", "lap_number", "lap_duration", "date_start")
LAPS = TableSpec("kernel_test.laps", ("session_key", "driver_number", "lap_number"),
                 LAP_COLUMNS)
ITEMS = TableSpec("kernel_test.items", "id", ("id", "grp", "name"))
# A key part that is a timestamptz: its row_key text must not depend on the session.
READINGS = TableSpec("kernel_test.readings", ("sensor", "at"), ("sensor", "at", "value"))
# Every column is a key column: nothing to compare or update.
LINKS = TableSpec("kernel_test.links", ("a", "b"), ("a", "b"))

SCHEMA = """
DROP SCHEMA IF EXISTS kernel_test CASCADE;
CREATE SCHEMA kernel_test;
CREATE TABLE kernel_test.laps (
    session_key   int NOT NULL,
    driver_number int NOT NULL,
    lap_number    int NOT NULL,
    lap_duration  double precision,
    date_start    timestamptz,
    PRIMARY KEY (session_key, driver_number, lap_number)
);
CREATE TABLE kernel_test.items (id text PRIMARY KEY, grp text NOT NULL, name text);
CREATE TABLE kernel_test.readings (
    sensor text, at timestamptz, value numeric, PRIMARY KEY (sensor, at));
CREATE TABLE kernel_test.links (a int, b text, PRIMARY KEY (a, b));
"""
LAPS_CHECKSUM = (
    "SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY session_key, driver_number,"
    " lap_number), '')) FROM kernel_test.laps t")
SESSION_CHECKSUM = (
    "SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY session_key, driver_number,"
    " lap_number), '')) FROM kernel_test.laps t WHERE session_key = $1")
T0 = datetime(2024, 3, 2, 15, 3, 0, 125000, tzinfo=UTC)


@pytest_asyncio.fixture(loop_scope="session")
async def conn(postgres: EmbeddedPostgres) -> AsyncIterator[asyncpg.Connection]:
    connection = await connect(postgres.dsn)
    await migrate(connection)
    await connection.execute(SCHEMA)
    await connection.execute(
        "DELETE FROM pipeline.changes WHERE table_name LIKE 'kernel_test.%'")
    yield connection
    await connection.execute("RESET TimeZone")
    await connection.close()


def run_id() -> str:
    return f"kernel-{uuid.uuid4().hex[:10]}"


def lap(session: int, driver: int, number: int, duration: float | None = 90.5,
        start: datetime | None = T0) -> tuple[Any, ...]:
    return (session, driver, number, duration, start)


async def merge(conn: Connection, spec: TableSpec, rows: Sequence[tuple[Any, ...]], run: str,
                scope: str = "all", **options: Any) -> MergeCounts:
    async with conn.transaction():
        return await merge_rows(conn, spec, rows, run_id=run, scope=scope, **options)


async def changes(conn: Connection, run: str) -> dict[str, tuple[str, str, Any]]:
    """row_key -> (scope, op, before) of a run's change log."""
    return {r["row_key"]: (r["scope"], r["op"], r["before"]) for r in await conn.fetch(
        "SELECT row_key, scope, op, before FROM pipeline.changed_rows WHERE run_id = $1", run)}


async def laps(conn: Connection) -> dict[tuple[int, int, int], tuple[Any, ...]]:
    return {tuple(r)[:3]: tuple(r) for r in await conn.fetch(
        "SELECT session_key, driver_number, lap_number, lap_duration, date_start"
        " FROM kernel_test.laps")}


def test_table_spec_keys() -> None:
    assert ITEMS.keys == ("id",) and not ITEMS.composite and ITEMS.compared == ("grp", "name")
    assert LAPS.keys == ("session_key", "driver_number", "lap_number") and LAPS.composite
    assert LAPS.compared == ("lap_duration", "date_start")
    assert LINKS.compared == ()
    for key in [("id",), (), ("id", "id"), ("id", "missing"), ("id", "Bad name"), ["id", "grp"]]:
        with pytest.raises(ValueError):
            TableSpec("kernel_test.items", key, ("id", "grp", "name"))  # type: ignore[arg-type]


def test_page_item_helpers() -> None:
    assert envelope_items(b'{"items": [1, {"a": 2}], "next_cursor": null}') == [1, {"a": 2}]
    assert array_items(b'[1, {"a": 2}]') == [1, {"a": 2}]
    with pytest.raises(ValueError):
        array_items(b'{"items": []}')
    with pytest.raises(ValueError):
        envelope_items(b'{"items": {"a": 1}}')


async def test_composite_insert_update_unchanged(conn: Connection) -> None:
    first = run_id()
    counts = await merge(conn, LAPS, [lap(9158, 44, 1), lap(9158, 44, 2), lap(9158, 1, 1)], first)
    assert counts.as_dict() == {"inserted": 3, "updated": 0, "unchanged": 0, "deleted": 0}
    logged = await changes(conn, first)
    assert set(logged) == {"[9158, 44, 1]", "[9158, 44, 2]", "[9158, 1, 1]"}
    assert {op for _, op, before in logged.values() if before is None} == {"insert"}

    second = run_id()
    counts = await merge(conn, LAPS, [
        lap(9158, 44, 1),                       # unchanged
        lap(9158, 44, 2, duration=None),        # updated (to NULL)
        lap(9158, 44, 3),                       # new: differs from a row in one key part only
    ], second)
    assert counts.as_dict() == {"inserted": 1, "updated": 1, "unchanged": 1, "deleted": 0}
    logged = await changes(conn, second)
    assert set(logged) == {"[9158, 44, 2]", "[9158, 44, 3]"}
    assert logged["[9158, 44, 2]"][1:] == ("update", {
        "session_key": 9158, "driver_number": 44, "lap_number": 2, "lap_duration": 90.5,
        "date_start": "2024-03-02T15:03:00.125+00:00"})
    assert logged["[9158, 44, 3]"][1:] == ("insert", None)
    stored = await laps(conn)
    assert len(stored) == 4 and stored[(9158, 44, 2)][3] is None


async def test_unlisted_rows_are_deleted_in_scope_only(conn: Connection) -> None:
    await merge(conn, LAPS, [lap(1, 44, 1), lap(1, 44, 2), lap(1, 16, 1), lap(1, 16, 2),
                             lap(2, 44, 1)], run_id())
    run = run_id()
    # (1, 16, 1) is listed but not written (e.g. invalid this time): it stays.
    # (1, 16, 2) is no longer listed: it goes. Session 2 is not in the scope.
    counts = await merge(
        conn, LAPS, [lap(1, 44, 1), lap(1, 44, 2, duration=88.0)], run, scope="1",
        delete_where="t.session_key = $3", delete_args=(1,),
        listed_keys={(1, 44, 1), (1, 44, 2), (1, 16, 1)})
    assert counts.as_dict() == {"inserted": 0, "updated": 1, "unchanged": 1, "deleted": 1}
    assert set(await laps(conn)) == {(1, 44, 1), (1, 44, 2), (1, 16, 1), (2, 44, 1)}
    logged = await changes(conn, run)
    assert {key: op for key, (_, op, _) in logged.items()} == {
        "[1, 44, 2]": "update", "[1, 16, 2]": "delete"}
    assert logged["[1, 16, 2]"][2]["lap_number"] == 2

    # Nothing listed: the whole scope goes, and its deletes are logged under the scope.
    run = run_id()
    counts = await merge(conn, LAPS, [], run, scope="1", delete_where="t.session_key = $3",
                         delete_args=(1,), listed_keys=set())
    assert counts.deleted == 3
    assert set(await laps(conn)) == {(2, 44, 1)}
    assert {scope for scope, _, _ in (await changes(conn, run)).values()} == {"1"}


async def test_a_listed_key_must_be_a_whole_key(conn: Connection) -> None:
    with pytest.raises(ValueError, match="tuple of 3"):
        await merge(conn, LAPS, [lap(1, 44, 1)], run_id(), delete_where="true",
                    listed_keys={(1, 44)})


async def test_a_batch_must_hold_each_key_once(conn: Connection) -> None:
    """Why staging dedups: the upsert cannot touch one row twice in one statement."""
    with pytest.raises(asyncpg.CardinalityViolationError):
        await merge(conn, LAPS, [lap(1, 44, 1), lap(1, 44, 1, duration=80.0)], run_id())


async def test_undo_of_a_run_and_of_one_scope_restores_exactly(conn: Connection) -> None:
    base = [lap(s, d, n, duration=80.0 + n, start=T0 + timedelta(minutes=n))
            for s in (1, 2) for d in (44, 16) for n in (1, 2, 3)]
    await merge(conn, LAPS, base, run_id())
    before = await conn.fetchval(LAPS_CHECKSUM)

    async def change_both_sessions(run: str) -> None:
        for session in (1, 2):
            rows = [lap(session, 44, 1, duration=70.0),          # updated
                    lap(session, 44, 2, start=None),             # updated
                    lap(session, 44, 3, duration=83.0, start=T0 + timedelta(minutes=3)),  # same
                    lap(session, 44, 4), lap(session, 7, 1)]     # inserted
            listed = {row[:3] for row in rows}                   # laps of driver 16 are gone
            counts = await merge(conn, LAPS, rows, run, scope=str(session),
                                 delete_where="t.session_key = $3", delete_args=(session,),
                                 listed_keys=listed)
            assert counts.as_dict() == {"inserted": 2, "updated": 2, "unchanged": 1,
                                        "deleted": 3}
        # A second load of the same run changes a row again: its first image is kept.
        await merge(conn, LAPS, [lap(1, 44, 1, duration=60.0)], run, scope="1")

    run = run_id()
    await change_both_sessions(run)
    after_session_2 = await conn.fetchval(SESSION_CHECKSUM, 2)
    assert await conn.fetchval(LAPS_CHECKSUM) != before

    # One scope: session 1 is as before the run, session 2 keeps the run's changes.
    before_session_1 = await _session_checksum_of(base, conn, 1)
    async with conn.transaction():
        restored = await undo_changes(conn, [LAPS], run_id=run, scope="1")
    assert restored == {"kernel_test.laps": 7}
    assert await conn.fetchval(SESSION_CHECKSUM, 1) == before_session_1
    assert await conn.fetchval(SESSION_CHECKSUM, 2) == after_session_2

    # The whole run: everything as before it. Undoing again changes nothing.
    async with conn.transaction():
        restored = await undo_changes(conn, [LAPS], run_id=run, scope=None)
    assert restored == {"kernel_test.laps": 7}
    assert await conn.fetchval(LAPS_CHECKSUM) == before
    async with conn.transaction():
        assert await undo_changes(conn, [LAPS], run_id=run, scope=None) == {
            "kernel_test.laps": 0}
    assert await conn.fetchval(LAPS_CHECKSUM) == before


async def test_a_rows_first_change_in_the_run_decides_its_undo(conn: Connection) -> None:
    """Inserts are logged as key arrays, updates and deletes one row each: whatever the
    mix, undo goes back to each row's state before the run (its first change)."""
    await conn.execute("DELETE FROM kernel_test.items")
    await merge(conn, ITEMS, [("b", "g1", "b0"), ("c", "g1", "c0")], run_id())
    before = await conn.fetch("SELECT * FROM kernel_test.items ORDER BY id")
    run = run_id()

    async def load(rows: list[tuple[str, str, str]], scope: str) -> MergeCounts:
        return await merge(conn, ITEMS, rows, run, scope=scope,
                           delete_where="t.grp = $3", delete_args=("g1",),
                           listed_keys={r[0] for r in rows})

    # a: inserted, then updated, then updated in another scope; b: deleted (not
    # listed), then inserted again; c: updated twice; d: inserted in scope 2 only.
    assert (await load([("a", "g1", "a1"), ("c", "g1", "c1")], "1")).as_dict() == {
        "inserted": 1, "updated": 1, "unchanged": 0, "deleted": 1}
    await load([("a", "g1", "a2"), ("b", "g1", "b1"), ("c", "g1", "c2")], "1")
    await merge(conn, ITEMS, [("a", "g1", "a3"), ("d", "g1", "d1")], run, scope="2")
    inserts = await conn.fetch(
        "SELECT scope, row_keys FROM pipeline.changes WHERE run_id = $1 AND row_keys IS NOT"
        " NULL ORDER BY id", run)
    assert [(r["scope"], r["row_keys"]) for r in inserts] == [
        ("1", ["a"]), ("1", ["b"]), ("2", ["d"])]

    # Scope 2 alone: d goes; a was first changed in scope 1, so it stays as it is.
    async with conn.transaction():
        await undo_changes(conn, [ITEMS], run_id=run, scope="2")
    rows = {r["id"]: r["name"] for r in await conn.fetch("SELECT * FROM kernel_test.items")}
    assert rows == {"a": "a3", "b": "b1", "c": "c2"}
    async with conn.transaction():
        await undo_changes(conn, [ITEMS], run_id=run, scope=None)
    assert await conn.fetch("SELECT * FROM kernel_test.items ORDER BY id") == before
    assert await conn.fetchval(
        "SELECT count(*) FROM pipeline.changed_rows WHERE run_id = $1"
        " AND compensated_at IS NULL", run) == 0


async def _session_checksum_of(rows: list[tuple[Any, ...]], conn: Connection,
                               session: int) -> str:
    """The checksum a session's laps have now, computed before the run from `base`: taken
    from a copy of the table, so it is the same text Postgres makes."""
    async with conn.transaction():
        await conn.execute("CREATE TEMP TABLE laps_copy (LIKE kernel_test.laps) ON COMMIT DROP")
        await conn.executemany("INSERT INTO laps_copy VALUES ($1, $2, $3, $4, $5)",
                               [r for r in rows if r[0] == session])
        checksum: str = await conn.fetchval(
            "SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY session_key, driver_number,"
            " lap_number), '')) FROM laps_copy t")
    return checksum


async def test_remerge_of_identical_rows_writes_nothing(conn: Connection) -> None:
    rows = [lap(5, d, n, duration=None if n == 2 else 91.25 + d / 7, start=None if d == 1 else T0)
            for d in (1, 44) for n in (1, 2, 3)]
    await merge(conn, LAPS, rows, run_id())
    xmins = await conn.fetch("SELECT session_key, driver_number, lap_number, xmin::text AS x"
                             " FROM kernel_test.laps ORDER BY 1, 2, 3")
    run = run_id()
    counts = await merge(conn, LAPS, list(reversed(rows)), run, delete_where="true",
                         listed_keys={row[:3] for row in rows})
    assert counts.as_dict() == {"inserted": 0, "updated": 0, "unchanged": 6, "deleted": 0}
    assert await conn.fetch("SELECT session_key, driver_number, lap_number, xmin::text AS x"
                            " FROM kernel_test.laps ORDER BY 1, 2, 3") == xmins
    assert await changes(conn, run) == {}


async def test_single_key_is_as_it_was(conn: Connection) -> None:
    first = run_id()
    await merge(conn, ITEMS, [("a", "g1", "A"), ("b", "g1", "B"), ("c", "g2", "C")], first)
    before = await conn.fetch("SELECT * FROM kernel_test.items ORDER BY id")
    run = run_id()
    counts = await merge(conn, ITEMS, [("a", "g1", "A2"), ("d", "g1", "D")], run, scope="g1",
                         delete_where="t.grp = $3", delete_args=("g1",), listed_keys={"a", "d"})
    assert counts.as_dict() == {"inserted": 1, "updated": 1, "unchanged": 0, "deleted": 1}
    logged = await changes(conn, run)
    assert logged == {
        "a": ("g1", "update", {"id": "a", "grp": "g1", "name": "A"}),
        "d": ("g1", "insert", None),
        "b": ("g1", "delete", {"id": "b", "grp": "g1", "name": "B"})}
    per_row = run_id()
    await merge(conn, ITEMS, [("c", "g2", "C2")], per_row, scope_per_row=True)
    assert await changes(conn, per_row) == {
        "c": ("c", "update", {"id": "c", "grp": "g2", "name": "C"})}
    async with conn.transaction():
        await undo_changes(conn, [ITEMS], run_id=per_row, scope="c")
        await undo_changes(conn, [ITEMS], run_id=run, scope=None)
    assert await conn.fetch("SELECT * FROM kernel_test.items ORDER BY id") == before


async def test_composite_scope_per_row_is_the_key_text(conn: Connection) -> None:
    run = run_id()
    await merge(conn, LAPS, [lap(3, 44, 1), lap(3, 44, 2)], run, scope_per_row=True)
    logged = await changes(conn, run)
    assert {key: scope for key, (scope, _, _) in logged.items()} == {
        "[3, 44, 1]": "[3, 44, 1]", "[3, 44, 2]": "[3, 44, 2]"}
    async with conn.transaction():
        assert await undo_changes(conn, [LAPS], run_id=run, scope="[3, 44, 2]") == {
            "kernel_test.laps": 1}
    assert set(await laps(conn)) == {(3, 44, 1)}


async def test_a_timestamptz_key_part_names_a_row_whatever_the_session_zone(
        conn: Connection) -> None:
    run = run_id()
    at = datetime(2024, 6, 1, 12, 30, tzinfo=UTC)
    await conn.execute("SET TimeZone = 'UTC'")
    await merge(conn, READINGS, [("s1", at, 1)], run)
    await conn.execute("SET TimeZone = 'America/Sao_Paulo'")
    counts = await merge(conn, READINGS, [("s1", at, 2)], run)
    assert counts.updated == 1
    # One row, under one key text in both changes: the first (an insert) decides undo.
    logged = await conn.fetch("SELECT row_key, op FROM pipeline.changed_rows"
                              " WHERE run_id = $1 ORDER BY id", run)
    assert [tuple(r) for r in logged] == [('["s1", "2024-06-01T12:30:00"]', "insert"),
                                          ('["s1", "2024-06-01T12:30:00"]', "update")]
    async with conn.transaction():
        assert await undo_changes(conn, [READINGS], run_id=run, scope=None) == {
            "kernel_test.readings": 1}
    assert await conn.fetchval("SELECT count(*) FROM kernel_test.readings") == 0


async def test_a_table_of_key_columns_only(conn: Connection) -> None:
    first = run_id()
    assert (await merge(conn, LINKS, [(1, "x"), (1, "y")], first)).inserted == 2
    run = run_id()
    counts = await merge(conn, LINKS, [(1, "x"), (2, "x")], run, delete_where="true",
                         listed_keys={(1, "x"), (2, "x")})
    assert counts.as_dict() == {"inserted": 1, "updated": 0, "unchanged": 1, "deleted": 1}
    async with conn.transaction():
        await undo_changes(conn, [LINKS], run_id=run, scope=None)
    assert {tuple(r) for r in await conn.fetch("SELECT a, b FROM kernel_test.links")} == {
        (1, "x"), (1, "y")}


class LapStager:
    """Laps of one session, landed as bare JSON arrays; judged item by item."""

    entity = "laps"
    spec = LAPS
    scope_per_row = False
    label_index: int | None = 3  # the lap time, as a "name"
    items_of = staticmethod(array_items)

    def __init__(self, session: int) -> None:
        self.session = session

    async def prepare(self, conn: Connection) -> None:
        return None


    async def finish(self, conn: Connection, outcome: StageOutcome) -> None:

        return None

    def judge(self, item: Any) -> Verdict:
        if not isinstance(item, dict):
            return Verdict(invalid_reason="item: not an object")
        key = (item.get("session_key"), item.get("driver_number"), item.get("lap_number"))
        if not all(isinstance(part, int) for part in key):
            return Verdict(invalid_reason="key: three integers expected")
        duration = item.get("lap_duration")
        if duration is not None and not isinstance(duration, int | float):
            return Verdict(key, invalid_reason=f"lap_duration: not a number: {duration!r}")
        if key[0] != self.session:
            return Verdict(key)  # another session's: out of scope
        start = item.get("date_start")
        return Verdict(key, (*key, duration, None if start is None
                             else datetime.fromisoformat(start)))

    def judge_page(self, body: bytes) -> list[Verdict] | None:
        return None

    def delete_scope(self) -> tuple[str, Sequence[Any]] | None:
        return "t.session_key = $3", (self.session,)


def item(driver: int, number: int, duration: Any = 90.5, session: int = 9) -> dict[str, Any]:
    return {"session_key": session, "driver_number": driver, "lap_number": number,
            "lap_duration": duration, "date_start": "2024-03-02T15:03:00+00:00",
            "ignored": "extra field"}


async def land(conn: Connection, run: str, pages: list[list[Any]]) -> str:
    load_id = f"{run}/laps"
    await begin_load(conn, load_id=load_id, run_id=run, entity="laps", scope="9",
                     source_path="/laps")
    for page_no, page in enumerate(pages):
        await land_page(conn, load_id=load_id, page_no=page_no, body=json.dumps(page).encode(),
                        item_count=len(page), next_cursor=None)
    await finish_load(conn, load_id=load_id, pages=len(pages))
    return load_id


async def test_stage_load_with_bare_array_pages_and_composite_keys(conn: Connection) -> None:
    # Before the run: a lap that will be listed but invalid (kept) and one no longer listed.
    await merge(conn, LAPS, [lap(9, 44, 2, duration=99.0), lap(9, 16, 5), lap(8, 1, 1)],
                run_id())
    run = run_id()
    invalid = item(44, 2, duration="fast")
    load_id = await land(conn, run, [
        [item(44, 1, duration=80.0), invalid, item(16, 1)],
        [item(44, 1, duration=81.0),            # the same key again: this one wins
         item(1, 1, session=8)],                # another session's: out of scope
    ])
    outcome = await stage_load(conn, LapStager(9), load_id=load_id, run_id=run, scope="9",
                               lock_key="laps:9", full_sync=True, return_keys=True)
    assert (outcome.fetched, outcome.staged, outcome.invalid, outcome.duplicates,
            outcome.out_of_scope) == (5, 2, 1, 1, 1)
    assert outcome.merge == {"inserted": 2, "updated": 0, "unchanged": 0, "deleted": 1}
    assert outcome.keys == ["[9, 44, 1]", "[9, 16, 1]"]
    assert outcome.labels == {"[9, 44, 1]": "81.0", "[9, 16, 1]": "90.5"}

    letters = await conn.fetch(
        "SELECT payload, reason, page_no, item_index FROM pipeline.dead_letters"
        " WHERE load_id = $1", load_id)
    assert [tuple(r) for r in letters] == [
        (invalid, "lap_duration: not a number: 'fast'", 0, 1)]
    stored = await laps(conn)
    assert set(stored) == {(9, 44, 1), (9, 16, 1), (9, 44, 2), (8, 1, 1)}
    assert stored[(9, 44, 1)][3] == 81.0
    assert stored[(9, 44, 2)][3] == 99.0  # listed, invalid this time: its old row stays
    assert set(await changes(conn, run)) == {"[9, 44, 1]", "[9, 16, 1]", "[9, 16, 5]"}

    again = await stage_load(conn, LapStager(9), load_id=load_id, run_id=run, scope="9",
                             lock_key="laps:9", full_sync=True, return_keys=True)
    assert again.already_staged and again.keys == outcome.keys
