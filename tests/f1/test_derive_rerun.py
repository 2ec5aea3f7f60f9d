"""Recomputing writes only what changed (nothing for unchanged raw rows), follows the
active metric version both ways, and is undone exactly from the change log."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import pytest

from activities.f1.derived_tables import DERIVED_UNDO_ORDER
from activities.f1.params import MetricParams, activate, active_params, add_version
from pipeworks.db import Connection
from pipeworks.merge import undo_changes
from tests.f1.derive_fixtures import (
    RACE,
    compare_with_reference,
    derive,
    insert_raw,
    new_run,
    session_inputs,
    snapshot,
    synthetic_race,
)
from tests.f1.reference_metrics import reference_metrics

pytestmark = pytest.mark.asyncio(loop_scope="session")

TABLES = ("f1.lap_metrics", "f1.stint_metrics", "f1.pit_cycles", "f1.driver_session_metrics",
          "f1.anomalies")
SAR, VER = 2, 1


def bodies(snap: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[str]]:
    return {table: [body for _, body in rows] for table, rows in snap.items()}


def changed_rows(before: dict[str, list[tuple[Any, ...]]],
                 after: dict[str, list[tuple[Any, ...]]]) -> dict[str, int]:
    """Per table, how many rows are new or were rewritten (their xmin moved)."""
    return {table: len(set(after[table]) - set(before[table])) for table in after}


async def test_recomputing_unchanged_data_writes_nothing(db: Connection) -> None:
    await insert_raw(db, synthetic_race())
    await derive(db, RACE)
    before = await snapshot(db, RACE)
    again = await derive(db, RACE)
    assert not again.changed
    for table in TABLES:
        counts = again.tables[table]
        assert (counts.inserted, counts.updated, counts.deleted) == (0, 0, 0), table
        assert counts.unchanged == len(before[table.split(".")[1]])
    assert await snapshot(db, RACE) == before   # every row's xmin too


async def test_a_raw_change_rewrites_exactly_the_rows_it_affects(db: Connection) -> None:
    await insert_raw(db, synthetic_race())
    await derive(db, RACE)
    reference_before = reference_metrics(**await session_inputs(db, RACE))
    before = await snapshot(db, RACE)
    # SAR, lapped and last, 0.3 s slower on lap 18; VER's lap 20 row disappears.
    await db.execute("UPDATE f1.laps SET lap_duration = lap_duration + 0.3"
                     " WHERE session_key = $1 AND driver_number = $2 AND lap_number = 18",
                     RACE, SAR)
    await db.execute("DELETE FROM f1.laps WHERE session_key = $1 AND driver_number = $2"
                     " AND lap_number = 20", RACE, VER)
    run = new_run()
    outcome = await derive(db, RACE, run_id=run)
    after = await snapshot(db, RACE)
    reference_after = reference_metrics(**await session_inputs(db, RACE))

    # The rows the definitions say changed are the rows that were written.
    for table, name in (("lap_metrics", "f1.lap_metrics"), ("stint_metrics", "f1.stint_metrics"),
                        ("pit_cycles", "f1.pit_cycles"),
                        ("driver_metrics", "f1.driver_session_metrics")):
        old, new = reference_before[table], reference_after[table]
        expected_updates = {k for k in set(old) & set(new) if old[k] != new[k]}
        counts = outcome.tables[name]
        assert counts.updated == len(expected_updates), table
        assert counts.deleted == len(set(old) - set(new)), table
        assert counts.inserted == len(set(new) - set(old)), table
    laps = outcome.tables["f1.lap_metrics"]
    assert laps.deleted == 1
    # SAR's lap 18, and lap 20 of everyone still there: a new leader, new gaps.
    assert laps.updated == 1 + 3
    assert changed_rows(before, after)["lap_metrics"] == laps.updated
    logged = await db.fetch(
        "SELECT table_name, op, count(*) AS n FROM pipeline.changed_rows WHERE run_id = $1"
        " GROUP BY table_name, op", run)
    assert {(r["table_name"], r["op"]): r["n"] for r in logged}[
        "f1.lap_metrics", "update"] == laps.updated
    assert await compare_with_reference(db, RACE) == {
        "lap_metrics": [], "stint_metrics": [], "pit_cycles": [], "driver_metrics": []}


async def test_another_metric_version_and_back(db: Connection) -> None:
    await insert_raw(db, synthetic_race())
    await derive(db, RACE)
    original = bodies(await snapshot(db, RACE))
    stricter = MetricParams(pace_window=1.02, fuel_s_per_kg=0.035,
                            neutralised_min_overlap_s=1.0)
    assert await add_version(db, "v2", stricter, "tighter pace window")
    assert not await add_version(db, "v2", stricter, "again: nothing to do")
    with pytest.raises(ValueError):
        await add_version(db, "v2", MetricParams(), "other parameters under the same name")
    await activate(db, "v2")
    assert await active_params(db) == ("v2", stricter)

    outcome = await derive(db, RACE)
    assert outcome.metric_version == "v2"
    assert outcome.tables["f1.lap_metrics"].updated == len(original["lap_metrics"])
    assert await db.fetchval("SELECT count(DISTINCT metric_version) FROM f1.lap_metrics") == 1
    # An "instant" of 1 s: LEC's lap 6, 0.4 s under the VSC, is not neutralised any more.
    assert await db.fetchval(
        "SELECT neutralised FROM f1.lap_metrics WHERE session_key = $1 AND driver_number = 16"
        " AND lap_number = 6", RACE) is None
    reference = reference_metrics(**await session_inputs(db, RACE), params=stricter)
    assert reference["lap_metrics"][16, 6]["neutralised"] is None

    # Rolling the metric change back: activate v1, recompute, the rows are as they were.
    await activate(db, "v1")
    await derive(db, RACE)
    assert bodies(await snapshot(db, RACE)) == original
    with pytest.raises(LookupError):
        await activate(db, "v9")


async def test_undo_restores_the_derived_tables_exactly(db: Connection) -> None:
    await insert_raw(db, synthetic_race())
    first = new_run()
    await derive(db, RACE, run_id=first)
    after_first = bodies(await snapshot(db, RACE))
    # A second run: raw rows changed and gone, derived rows updated and deleted.
    await db.execute("UPDATE f1.laps SET lap_duration = lap_duration - 0.25"
                     " WHERE session_key = $1 AND lap_number BETWEEN 2 AND 4", RACE)
    await db.execute("DELETE FROM f1.stints WHERE session_key = $1 AND driver_number = $2"
                     " AND stint_number = 3", RACE, SAR)
    await db.execute("UPDATE f1.pit_stops SET lane_duration = 90 WHERE session_key = $1"
                     " AND driver_number = $2 AND lap_number = 8", RACE, VER)
    second = new_run()
    outcome = await derive(db, RACE, run_id=second)
    assert outcome.tables["f1.stint_metrics"].deleted == 1
    assert outcome.tables["f1.anomalies"].inserted >= 1
    assert bodies(await snapshot(db, RACE)) != after_first

    async with db.transaction():
        await undo_changes(db, DERIVED_UNDO_ORDER, run_id=second, scope=None)
    assert bodies(await snapshot(db, RACE)) == after_first
    async with db.transaction():
        await undo_changes(db, DERIVED_UNDO_ORDER, run_id=first, scope=None)
    assert all(rows == [] for rows in (await snapshot(db, RACE)).values())


async def test_the_migrations_v1_holds_every_default() -> None:
    sql = resources.files("activities.f1.migrations").joinpath("0001_tables.sql").read_text()
    found = re.search(r"VALUES \('v1', '(\{.*?\})'", sql, re.DOTALL)
    assert found is not None
    assert MetricParams.model_validate(json.loads(found.group(1))) == MetricParams()
    assert set(json.loads(found.group(1))) == set(MetricParams.model_fields)
