"""What every command shares: settings, the event loop, one-line usage errors, and
starting or attaching to a run and following it to its end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

from rich.console import Console

from pipeworks import registry
from pipeworks.inputs import RunInput
from pipeworks.logging import configure_logging
from pipeworks.settings import Settings, load_settings
from starters import client as runs
from starters.render import LiveProgress, progress_table

T = TypeVar("T")
console = Console()
errors = Console(stderr=True)


class UsageProblem(Exception):
    """Bad arguments: one line on stderr, exit 2."""


def settings() -> Settings:
    """The kernel's settings, with every registered pipeline's checked now: a bad value
    stops the command at start with one line naming the variable."""
    loaded = load_settings()
    for pipeline in registry.installed():
        if pipeline.settings is not None:
            loaded.of(pipeline.settings)
    configure_logging(loaded.log_format, loaded.log_level)
    return loaded


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def finish(client: Any, workflow_id: str, wait: bool, as_json: bool,
                 run_id: str | None = None) -> int:
    if not wait:
        return 0
    if as_json:
        document = await runs.follow(client, workflow_id, lambda d: None, run_id)
        print(json.dumps(document, ensure_ascii=False))
        return runs.exit_code_for(document)
    live = LiveProgress(console)
    with live.shown():
        document = await runs.follow(client, workflow_id, live.update, run_id)
    console.print(progress_table(document))
    return runs.exit_code_for(document)


async def start_and_follow(config: Settings, request: RunInput, wait: bool,
                           as_json: bool) -> int:
    client = await runs.connect(config)
    started = await runs.start_run(client, config, request)
    announce(config, started, request.workflow_id, as_json, wait)
    return await finish(client, request.workflow_id, wait, as_json,
                        started.handle.result_run_id)


def announce(config: Settings, started: runs.Started, workflow_id: str, as_json: bool,
             wait: bool) -> None:
    """What was started or joined. With --json stdout holds exactly one JSON document:
    this one, or with --wait the final progress (then this line goes to stderr)."""
    ui = (f"{config.temporal_ui_url}/namespaces/{config.temporal_namespace}/workflows/"
          f"{workflow_id}")
    if as_json and not wait:
        print(json.dumps({"workflow_id": workflow_id, "run_id": started.handle.result_run_id,
                          "attached": started.attached, "web_ui": ui}))
        return
    verb = "attached to running" if started.attached else "started"
    (errors if as_json else console).print(f"{verb} [bold]{workflow_id}[/]  {ui}",
                                           highlight=False)
