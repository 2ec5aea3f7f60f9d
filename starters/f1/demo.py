"""The F1 part of `pipeworks demo`: sync the Bahrain 2024 Grand Prix (its calendar, then
its race) with live progress, and print the race's report."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from rich.console import Console

from pipeworks.settings import Settings
from starters import client as runs
from starters.f1 import report
from starters.inputs import tuned_input
from starters.render import LiveProgress, progress_table
from workflows.f1.inputs import F1SeasonSyncInput

DEMO_YEAR = 2024
DEMO_MEETING = 1229      # Bahrain 2024 (OpenF1's keys)
DEMO_SESSION = 9472      # its race


def f1_demo(settings: Settings, console: Console) -> int:
    request = tuned_input(F1SeasonSyncInput, settings, {
        "year": DEMO_YEAR, "meeting_keys": [DEMO_MEETING], "session_names": ["Race"],
        "mode": "full"})

    async def sync() -> tuple[dict[str, Any], float]:
        client = await runs.connect(settings)
        started = await runs.start_run(client, settings, request)
        console.print(f"syncing the {DEMO_YEAR} Bahrain Grand Prix race "
                      f"({request.workflow_id}, run {started.handle.result_run_id})",
                      highlight=False)
        began = time.monotonic()
        live = LiveProgress(console)
        with live.shown():
            document = await runs.follow(client, request.workflow_id, live.update)
        return document, time.monotonic() - began

    document, seconds = asyncio.run(sync())
    console.print(progress_table(document))
    console.print(f"season sync took {seconds:.1f} s", highlight=False)
    found = asyncio.run(report.session_report(settings.resolved_database_url(), DEMO_SESSION))
    if found is not None:
        report.render(console, found)
    console.print(f"try `pipeworks f1 report {DEMO_SESSION} --lap 1:17` (a lap's lineage) or "
                  f"`pipeworks f1 sync --year {DEMO_YEAR} --wait` next", highlight=False)
    return runs.exit_code_for(document)
