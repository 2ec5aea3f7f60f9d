"""The sports part of `pipeworks demo`: seed demo accounts, sync an association with
live progress, and end with a summary of what landed where."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from activities.sports.settings import SportsSettings
from pipeworks.db import connect
from pipeworks.settings import Settings
from starters import client as runs
from starters.inputs import tuned_input
from starters.render import LiveProgress, progress_table
from starters.sports.accounts import add_account
from workflows.sports.inputs import AccountSyncInput

DEMO_ASSOCIATION_ACCOUNT = 1
SUMMARY_TABLES = ("sports.accounts", "sports.competitions", "sports.teams", "sports.games",
                  "pipeline.dead_letters", "pipeline.runs")


async def seed_demo_accounts(database_url: str, api_url: str
                             ) -> list[tuple[int, str, str, str]]:
    """Accounts for the demo upstream's associations and two of its clubs."""
    seeded: list[tuple[int, str, str, str]] = []
    async with httpx.AsyncClient(base_url=api_url, timeout=10) as http:
        for number in (1, 2, 3):
            response = await http.get(f"/v1/associations/A{number}")
            if response.status_code == 200:
                seeded.append((number, "association", f"A{number}", response.json()["name"]))
        competitions = (await http.get("/v1/associations/A1/competitions")).json()["items"]
        teams = (await http.get(f"/v1/competitions/{competitions[0]['id']}/teams")).json()
        club_ids = sorted({t["club_id"] for t in teams["items"] if t.get("club_id")})[:2]
        for offset, club_id in enumerate(club_ids):
            club = (await http.get(f"/v1/clubs/{club_id}")).json()
            seeded.append((101 + offset, "club", club_id, club["name"]))
    for account_id, kind, org_id, name in seeded:
        await add_account(database_url, account_id, kind, org_id, name)
    return seeded


async def table_counts(database_url: str, run_id: str) -> dict[str, int]:
    conn = await connect(database_url)
    try:
        # Table names from the constant SUMMARY_TABLES, not from data.
        counts = {t: int(await conn.fetchval(f"SELECT count(*) FROM {t}"))  # noqa: S608
                  for t in SUMMARY_TABLES}
        counts["dead letters of this run"] = int(await conn.fetchval(
            "SELECT count(*) FROM pipeline.dead_letters WHERE run_id = $1", run_id))
        return counts
    finally:
        await conn.close()


def summary_table(counts: dict[str, int], document: dict[str, Any], seconds: float) -> Table:
    table = Table(title="demo summary")
    table.add_column("what")
    table.add_column("value", justify="right")
    for name, n in counts.items():
        table.add_row(f"rows in {name}" if "." in name else name, f"{n:,}")
    table.add_row("run status", document.get("status", "?"))
    table.add_row("duration", f"{seconds:.1f} s")
    return table


def sports_demo(settings: Settings, console: Console) -> int:
    """Runs on the stack `pipeworks demo` brought up; returns the run's exit status."""
    database_url = settings.resolved_database_url()
    api_url = settings.of(SportsSettings).api_url(settings)
    seeded = asyncio.run(seed_demo_accounts(database_url, api_url))
    console.print("seeded accounts: " + ", ".join(
        f"{a} ({kind} {org} {name})" for a, kind, org, name in seeded), highlight=False)
    request = tuned_input(AccountSyncInput, settings,
                          {"account_id": DEMO_ASSOCIATION_ACCOUNT})

    async def sync() -> tuple[dict[str, Any], str, float]:
        client = await runs.connect(settings)
        started = await runs.start_run(client, settings, request)
        run_id = started.handle.result_run_id or ""
        console.print(f"syncing account {DEMO_ASSOCIATION_ACCOUNT} "
                      f"({request.workflow_id}, run {run_id})", highlight=False)
        sync_began = time.monotonic()
        live = LiveProgress(console)
        with live.shown():
            document = await runs.follow(client, request.workflow_id, live.update)
        return document, run_id, time.monotonic() - sync_began

    document, run_id, sync_seconds = asyncio.run(sync())
    console.print(progress_table(document))
    counts = asyncio.run(table_counts(database_url, run_id))
    link = (f"{settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}/workflows/"
            f"{request.workflow_id}/{run_id}/history")
    console.print(summary_table(counts, document, sync_seconds))
    console.print(f"this run in the Web UI: {link}", highlight=False, soft_wrap=True)
    console.print("try `pipeworks sync-all --kind association --wait` next", highlight=False)
    return runs.exit_code_for(document)
