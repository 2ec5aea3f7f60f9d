"""`pipeworks health` and the worker line of `pipeworks dev status`: what a worker's
health endpoint (PIPEWORKS_HEALTH_ADDRESS) says."""

from __future__ import annotations

from typing import Any

import httpx
from rich.table import Table

from starters.client import StarterError

PROBE_TIMEOUT_SECONDS = 5.0
STATE_STYLE = {"idle": "green", "processing": "cyan", "draining": "yellow", "error": "red",
               "starting": "yellow"}


def probe(address: str) -> dict[str, Any]:
    """The worker's `/readyz` document (its body says why when it is not ready)."""
    if not address:
        raise StarterError("PIPEWORKS_HEALTH_ADDRESS is empty: this worker serves no health "
                           "endpoint (give --address host:port)")
    url = f"http://{address}/readyz"
    try:
        response = httpx.get(url, timeout=PROBE_TIMEOUT_SECONDS)
        document = response.json()
    except httpx.HTTPError as err:
        raise StarterError(f"no worker answers at {url}: {type(err).__name__}") from None
    except ValueError:
        raise StarterError(f"{url} answered something that is not a health document") from None
    if not isinstance(document, dict) or "state" not in document:
        raise StarterError(f"{url} answered something that is not a health document")
    return document


def summary(document: dict[str, Any]) -> str:
    checks = ", ".join(f"{k} {v}" for k, v in document.get("checks", {}).items())
    return (f"{document.get('state')}, {'ready' if document.get('ready') else 'not ready'}"
            f" ({checks}); {document.get('in_flight_activities', 0)} activities in flight")


def health_table(address: str, document: dict[str, Any]) -> Table:
    table = Table(title=f"worker at {address}", show_header=False)
    table.add_column("what")
    table.add_column("value")
    state = str(document.get("state"))
    table.add_row("state", f"[{STATE_STYLE.get(state, 'white')}]{state}[/]")
    table.add_row("ready", "yes" if document.get("ready") else "[red]no[/]")
    for name, result in document.get("checks", {}).items():
        table.add_row(name, result if result == "ok" else f"[red]{result}[/]")
    table.add_row("task queue", str(document.get("task_queue", "")))
    table.add_row("activities in flight", str(document.get("in_flight_activities", 0)))
    table.add_row("activities completed", str(document.get("completed_activities", 0)))
    table.add_row("pid", str(document.get("pid", "")))
    if document.get("error"):
        table.add_row("error", f"[red]{document['error']}[/]")
    return table
