"""`pipeworks dev up | down | status`: the embedded stack, shown as tables."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from devstack.processes import DevStackError
from devstack.stack import Component, DevStack
from pipeworks.settings import Settings
from starters import health
from starters.client import StarterError

STATE_STYLE = {"started": "green", "running": "cyan", "stopped": "yellow",
               "not running": "dim", "external": "blue"}


def components_table(title: str, components: list[Component]) -> Table:
    table = Table(title=title)
    table.add_column("component")
    table.add_column("state")
    table.add_column("where")
    for c in components:
        table.add_row(c.name, f"[{STATE_STYLE.get(c.state, 'white')}]{c.state}[/]", c.detail)
    return table


def up(settings: Settings, console: Console) -> DevStack:
    stack = DevStack(settings)
    try:
        with console.status("starting the embedded stack..."):
            report = stack.up()
    except DevStackError as err:
        raise StarterError(str(err).splitlines()[0]) from err
    console.print(components_table("pipeworks dev stack", report))
    console.print(f"Web UI: {settings.temporal_ui_url}   state: {stack.home}")
    # The link logs the browser in with the local operator key (kept in the stack's
    # home, owner-only) and takes it out of the address bar at once.
    console.print(f"Dashboard: {stack.dashboard_login_url()}", highlight=False, soft_wrap=True)
    return stack


def down(settings: Settings, console: Console) -> None:
    console.print(components_table("pipeworks dev stack", DevStack(settings).down()))


def status(settings: Settings, console: Console) -> None:
    stack = DevStack(settings)
    components = stack.status()
    console.print(components_table("pipeworks dev stack", components))
    worker_runs = any(c.name == "worker" and c.state == "running" for c in components)
    if worker_runs and settings.health_address:
        try:
            console.print(f"worker health: {health.summary(health.probe(settings.health_address))}",
                          highlight=False)
        except StarterError as err:
            console.print(f"worker health: [red]{err}[/]", highlight=False)
