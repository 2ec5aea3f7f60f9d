"""A merge sends its rows as one JSON text, or as typed arrays when JSON cannot carry a
value exactly: both ways must write the same rows, value for value. And page bodies
mean the same whichever JSON parser reads them."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
import pytest_asyncio

from devstack.postgres import EmbeddedPostgres
from pipeworks import json_text, merge
from pipeworks.db import Connection, connect, migrate
from pipeworks.merge import TableSpec, merge_rows

COLUMNS = ("id", "label", "n", "big", "ok", "day", "at", "x", "u")
WIDE = TableSpec("kernel_enc.wide", "id", COLUMNS)
SCHEMA = """
DROP SCHEMA IF EXISTS kernel_enc CASCADE;
CREATE SCHEMA kernel_enc;
CREATE TABLE kernel_enc.wide (
    id text PRIMARY KEY, label varchar(40), n integer, big bigint, ok boolean, day date,
    at timestamptz, x double precision, u uuid);
"""
T0 = datetime(2024, 3, 2, 15, 3, 0, 125001, tzinfo=UTC)
ROWS: list[tuple[Any, ...]] = [
    ("a", "plain", 1, 2**62, True, date(2024, 1, 31), T0, 0.1, uuid.UUID(int=1)),
    ("b", 'quote " back\\slash \u00e9\U0001f3ce \u2028', -(2**31), -(2**63), False,
     date(2, 1, 1), T0.astimezone(timezone(timedelta(hours=14))), 1e-300, None),
    ("c", None, None, None, None, None, None, None, None),
    ("d", "", 2**31 - 1, 0, True, date(9998, 12, 31),
     datetime(2024, 6, 1, 12, 30, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
     123456789.123456789, uuid.UUID(int=2**128 - 1)),
    ("e", "ünïcödé", 7, 7, False, date(2000, 2, 29), T0 - timedelta(days=3650), 0.0, None),
]


@pytest_asyncio.fixture(loop_scope="session")
async def conn(postgres: EmbeddedPostgres) -> AsyncIterator[Connection]:
    connection = await connect(postgres.dsn)
    await migrate(connection)
    await connection.execute(SCHEMA)
    yield connection
    await connection.execute("DROP SCHEMA kernel_enc CASCADE")
    await connection.close()


async def stored(conn: Connection, rows: list[tuple[Any, ...]], *, as_json: bool,
                 monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    await conn.execute("TRUNCATE kernel_enc.wide")
    if not as_json:
        monkeypatch.setattr(merge, "_as_json", lambda spec, types, rows: None)
    try:
        async with conn.transaction():
            counts = await merge_rows(conn, WIDE, rows, run_id=f"enc-{uuid.uuid4().hex}",
                                      scope="all")
    finally:
        monkeypatch.undo()
    assert counts.inserted == len(rows)
    return [tuple(r) for r in await conn.fetch(
        f"SELECT {', '.join(COLUMNS)} FROM kernel_enc.wide ORDER BY id")]


async def test_json_and_typed_arrays_write_the_same_rows(
        conn: Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    assert merge._as_json(WIDE, await merge.column_types(conn, WIDE), ROWS) is not None
    by_json = await stored(conn, ROWS, as_json=True, monkeypatch=monkeypatch)
    by_arrays = await stored(conn, ROWS, as_json=False, monkeypatch=monkeypatch)
    assert by_json == by_arrays
    assert [r[0] for r in by_json] == ["a", "b", "c", "d", "e"]
    assert by_json[1][6] == T0 and by_json[3][6] == datetime(2024, 6, 1, 16, 0, tzinfo=UTC)
    # Tuples compare -0.0 == 0.0: the signs of zero, compared themselves.
    assert [math.copysign(1.0, r[7]) for r in by_json if r[7] == 0] == [
        math.copysign(1.0, r[7]) for r in by_arrays if r[7] == 0] == [1.0]


async def test_values_json_cannot_carry_go_as_typed_arrays(
        conn: Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    types = await merge.column_types(conn, WIDE)
    for odd in (math.nan, math.inf, -math.inf, -0.0):
        rows = [("n", "x", 1, 1, True, None, None, odd, None)]
        assert merge._as_json(WIDE, types, rows) is None
        [row] = await stored(conn, rows, as_json=True, monkeypatch=monkeypatch)
        assert math.isnan(row[7]) if math.isnan(odd) else (
            row[7] == odd and math.copysign(1.0, row[7]) == math.copysign(1.0, odd))
    surrogate = [("s", "\ud800", 1, 1, True, None, None, None, None)]
    assert merge._as_json(WIDE, types, surrogate) is None
    # What asyncpg writes otherwise than JSON would: the extremes (as infinity), a naive
    # timestamp (as local time), an offset with seconds (which orjson drops).
    odd_times: list[Any] = [date.max, date.min, datetime.max.replace(tzinfo=UTC),
                            datetime(2024, 1, 1, 12), datetime(
                                2024, 1, 1, 12, tzinfo=timezone(timedelta(seconds=3661)))]
    for value in odd_times:
        column = 5 if type(value) is date else 6
        row = ["t", "x", 1, 1, True, None, None, None, None]
        row[column] = value
        assert merge._as_json(WIDE, types, [tuple(row)]) is None, value
    with pytest.raises(ValueError):
        merge._as_json(WIDE, types, [("short", "row")])


def test_page_bodies_mean_the_same_whichever_parser_reads_them() -> None:
    for body in [b'{"items": [1, 2.5, "x", null, true], "next_cursor": "c"}',
                 b'[NaN, Infinity, -Infinity]', b'[123456789012345678901234567890]',
                 b'["\\ud800"]', '["é"]'.encode()]:
        ours, theirs = json_text.loads(body), json.loads(body)
        assert json.dumps(ours) == json.dumps(theirs)
    with pytest.raises(ValueError):
        json_text.loads(b"{not json")
