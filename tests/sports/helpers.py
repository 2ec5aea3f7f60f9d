"""Comparing Postgres with the upstream, row for row, and table checksums."""

from __future__ import annotations

import json
import math
import os
import uuid
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle

from devstack.sports.dataset import Dataset
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.run_results import failure_of as failure_of  # re-exported
from tests.table_snapshots import checksums as table_checksums
from workflows.sports.inputs import RunOptions

SPORTS_TABLES = ("sports.competitions", "sports.teams", "sports.games")


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def competition_row(c: dict[str, Any]) -> tuple[Any, ...]:
    return (c["id"], c["name"], c["season"], _day(c["starts_on"]), _day(c.get("ends_on")),
            c["status"])


def team_row(t: dict[str, Any], competition_id: str) -> tuple[Any, ...]:
    return (t["id"], competition_id, t["name"], t.get("club_id"))


def game_row(g: dict[str, Any], competition_id: str) -> tuple[Any, ...]:
    return (g["id"], competition_id, g.get("round"), _ts(g["scheduled_at"]), g["home_team_id"],
            g["away_team_id"], g.get("venue"), g["status"], g.get("home_score"),
            g.get("away_score"), _ts(g["updated_at"]))


async def db_rows(conn: Connection, table: str) -> set[tuple[Any, ...]]:
    columns = {
        "sports.competitions": "id, name, season, starts_on, ends_on, status",
        "sports.teams": "id, competition_id, name, club_id",
        "sports.games": "id, competition_id, round, scheduled_at, home_team_id, away_team_id,"
                        " venue, status, home_score, away_score, source_updated_at",
    }[table]
    return {tuple(r) for r in await conn.fetch(f"SELECT {columns} FROM {table}")}


def expected_association(dataset: Dataset, association_id: str,
                         club_id: str | None = None) -> dict[str, set[tuple[Any, ...]]]:
    """What the tables must hold after a full sync of one organisation."""
    competitions = (dataset.expected_club_competitions(club_id) if club_id
                    else dataset.expected_competitions(association_id))
    rows: dict[str, set[tuple[Any, ...]]] = {t: set() for t in SPORTS_TABLES}
    for c in competitions:
        rows["sports.competitions"].add(competition_row(c))
        teams = dataset.expected_teams(c["id"], valid_only=True)
        rows["sports.teams"] |= {team_row(t, c["id"]) for t in teams}
        club_teams = {t["id"] for t in teams if club_id and t.get("club_id") == club_id}
        for g in dataset.expected_games(c["id"], valid_only=True):
            if club_id is None or {g["home_team_id"], g["away_team_id"]} & club_teams:
                rows["sports.games"].add(game_row(g, c["id"]))
    return rows


async def assert_tables_equal(conn: Connection, expected: dict[str, set[tuple[Any, ...]]]
                              ) -> None:
    for table, rows in expected.items():
        actual = await db_rows(conn, table)
        missing, extra = rows - actual, actual - rows
        assert not missing and not extra, (
            f"{table}: {len(missing)} missing, {len(extra)} extra; "
            f"e.g. missing {sorted(missing)[:2]} extra {sorted(extra)[:2]}")


async def checksums(conn: Connection) -> dict[str, str]:
    return await table_checksums(conn, (*SPORTS_TABLES, "sports.accounts"))


def run_options(settings: Settings) -> dict[str, Any]:
    """The tuning a starter takes from settings (what `pipeworks sync` sends)."""
    return RunOptions.tuning(settings)


async def start_sync(client: Client, settings: Settings, **fields: Any
                     ) -> WorkflowHandle[Any, Any]:
    payload = {**run_options(settings), **fields}
    target = (f"account-{fields['account_id']}" if "account_id" in fields
              else f"{fields.get('org_kind')}-{fields.get('org_id')}")
    return await client.start_workflow(
        "AccountSyncWorkflow", payload, id=f"sports-sync-{target}-{uuid.uuid4().hex[:6]}",
        task_queue=settings.task_queue)




def pages(items: int, page_size: int) -> int:
    """Pages the upstream serves for `items` (an empty list is one page)."""
    return max(1, math.ceil(items / page_size))


def requests_of_a_run(dataset: Dataset, competitions: list[str], page_size: int,
                      since: str | None = None) -> int:
    """Upstream requests a fault-free run makes: the organisation, then every page."""
    return 1 + pages(len(competitions), page_size) + sum(
        pages(len(dataset.expected_teams(c)), page_size)
        + pages(len(dataset.expected_games(c, updated_since=since)), page_size)
        for c in competitions)


def a_club_of(dataset: Dataset, association_id: str) -> str:
    """The first club of an association that fields teams in its competitions."""
    return next(c for c in sorted(dataset.clubs)
                if dataset.clubs[c].association_id == association_id
                and dataset.expected_club_competitions(c))


# -- chaos suite: comparisons that count what they compared --------------------------


@dataclass
class FaultTally:
    """What the chaos suite did for one kind of fault, for the README's table."""

    faults: int = 0         # faults injected (kills, restarts, failure points, cancels)
    runs: int = 0           # workflow runs checked afterwards
    rows_compared: int = 0  # rows checked one by one against what they must be
    rows_lost: int = 0      # rows that should be there and were not
    rows_extra: int = 0     # rows that should not be there and were
    changes_undone: int = 0  # row changes the runs made and compensation undid


CHAOS_TALLIES: dict[str, FaultTally] = {}


def chaos_tally(fault: str) -> FaultTally:
    return CHAOS_TALLIES.setdefault(fault, FaultTally())


def write_chaos_tallies() -> None:
    """Adds this process's tallies to the JSON file PIPEWORKS_CHAOS_COUNTS names, if any
    (several test modules, or several pytest runs, add up)."""
    target = os.environ.get("PIPEWORKS_CHAOS_COUNTS")
    if not target or not CHAOS_TALLIES:
        return
    path = Path(target)
    totals: dict[str, dict[str, int]] = json.loads(path.read_text()) if path.exists() else {}
    for fault, tally in CHAOS_TALLIES.items():
        row = totals.setdefault(fault, {})
        for key, value in asdict(tally).items():
            row[key] = row.get(key, 0) + value
    path.write_text(json.dumps(totals, indent=1, sort_keys=True))
    CHAOS_TALLIES.clear()


def compare_counted(fault: str, table: str, expected: set[tuple[Any, ...]],
                     actual: set[tuple[Any, ...]]) -> str | None:
    tally = chaos_tally(fault)
    missing, extra = expected - actual, actual - expected
    tally.rows_compared += len(expected | actual)
    tally.rows_lost += len(missing)
    tally.rows_extra += len(extra)
    if not missing and not extra:
        return None
    return (f"{table}: {len(missing)} missing, {len(extra)} extra; "
            f"e.g. missing {sorted(missing, key=repr)[:2]} extra {sorted(extra, key=repr)[:2]}")


async def assert_tables_equal_counted(conn: Connection,
                                      expected: dict[str, set[tuple[Any, ...]]],
                                      *, fault: str) -> None:
    """`assert_tables_equal`, counting every row compared (and lost) under `fault`."""
    problems = [compare_counted(fault, table, rows, await db_rows(conn, table))
                for table, rows in expected.items()]
    assert not any(problems), "; ".join(p for p in problems if p)


async def sports_snapshot(conn: Connection) -> dict[str, set[tuple[Any, ...]]]:
    """Every row of the sports tables: what a rollback must restore."""
    return {table: await db_rows(conn, table) for table in SPORTS_TABLES}


async def assert_restored_counted(conn: Connection, rows_before: dict[str, set[tuple[Any, ...]]],
                                  sums_before: dict[str, str], *, fault: str) -> None:
    """After a rollback: every row as before it (counted under `fault`), and every
    table's checksum as before it."""
    await assert_tables_equal_counted(conn, rows_before, fault=fault)
    assert await checksums(conn) == sums_before


async def restore_snapshot(conn: Connection, rows: dict[str, set[tuple[Any, ...]]]) -> None:
    """Puts the sports tables back to a snapshot, so that examples of a property start
    from the same database (not a rollback: that is what the examples test)."""
    columns = {
        "sports.competitions": "id, name, season, starts_on, ends_on, status",
        "sports.teams": "id, competition_id, name, club_id",
        "sports.games": "id, competition_id, round, scheduled_at, home_team_id, away_team_id,"
                        " venue, status, home_score, away_score, source_updated_at",
    }  # as db_rows reads them
    async with conn.transaction():
        for table in reversed(SPORTS_TABLES):
            await conn.execute(f"DELETE FROM {table}")
        for table in SPORTS_TABLES:
            count = columns[table].count(",") + 1
            placeholders = ", ".join(f"${i + 1}" for i in range(count))
            await conn.executemany(
                f"INSERT INTO {table} ({columns[table]}) VALUES ({placeholders})",
                sorted(rows[table], key=repr))


