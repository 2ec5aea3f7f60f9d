"""`pipeworks demo`: bring the stack up, then run every pipeline's demo part (each
starts its runs with live progress and ends with a summary)."""

from __future__ import annotations

import time

from rich.console import Console

from pipeworks import registry
from pipeworks.settings import Settings
from starters import dev


def run_demo(settings: Settings, console: Console, *, keep_stack: bool = True) -> int:
    began = time.monotonic()
    stack = dev.up(settings, console)
    worst = 0
    for pipeline in registry.installed():
        if pipeline.demo is not None:
            console.rule(f"{pipeline.name}: {pipeline.description}")
            worst = max(worst, pipeline.demo(settings, console))
    console.print(f"demo took {time.monotonic() - began:.1f} s in all (stack start included)")
    if keep_stack:
        console.print("The stack keeps running: watch these runs in the dashboard, "
                      f"{stack.dashboard_login_url()} , or the Web UI above; try "
                      "`pipeworks pipelines`, then `pipeworks dev down`.", highlight=False,
                      soft_wrap=True)
    else:
        dev.down(settings, console)
    return worst
