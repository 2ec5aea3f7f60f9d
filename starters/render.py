"""Rich views of a progress document: live bars per stage and summary tables."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

STATUS_STYLE = {
    "completed": "green", "completed_with_errors": "yellow", "failed": "red",
    "cancelled": "magenta", "compensating": "yellow", "running": "cyan", "pending": "white",
}


class LiveProgress:
    """One bar per stage, fed by successive progress documents."""

    def __init__(self, console: Console) -> None:
        self._bars = Progress(
            TextColumn("[bold]{task.fields[stage]:<13}"), BarColumn(),
            TextColumn("{task.percentage:>5.1f}%"),
            TextColumn("{task.fields[units]}"), TextColumn("{task.fields[records]}"),
            TimeElapsedColumn(), console=console, transient=False)
        self._tasks: dict[str, TaskID] = {}
        self._status = self._bars.add_task("run", total=100, stage="run", units="", records="")

    def update(self, document: dict[str, Any]) -> None:
        for stage in document.get("stages", []):
            name = stage["name"]
            if name not in self._tasks:
                self._tasks[name] = self._bars.add_task(
                    name, total=100, stage=name, units="", records="")
            total = stage.get("total")
            units = f"{stage['done']}/{total if total is not None else '?'}"
            if stage.get("failed"):
                units += f" ({stage['failed']} failed)"
            r = stage.get("records", {})
            self._bars.update(
                self._tasks[name], completed=stage.get("percent", 0.0), units=units,
                records=f"fetched {r.get('fetched', 0)} staged {r.get('staged', 0)} "
                        f"invalid {r.get('invalid', 0)}")
        status = document.get("status", "?")
        style = STATUS_STYLE.get(status, "white")
        self._bars.update(self._status, completed=document.get("percent", 0.0),
                          units=f"[{style}]{status}[/]",
                          records=document.get("message") or "")

    @contextmanager
    def shown(self) -> Iterator[LiveProgress]:
        with self._bars:
            yield self


def progress_table(document: dict[str, Any]) -> Table:
    status = document.get("status", "?")
    table = Table(title=f"{document.get('workflow_id')}  [{STATUS_STYLE.get(status, 'white')}]"
                        f"{status}[/]  {document.get('percent', 0):.1f}%")
    for column in ("stage", "status", "done", "failed", "fetched", "staged", "invalid"):
        table.add_column(column, justify="left" if column in ("stage", "status") else "right")
    for stage in document.get("stages", []):
        r = stage.get("records", {})
        total = stage.get("total")
        table.add_row(stage["name"], stage["status"],
                      f"{stage['done']}/{total if total is not None else '?'}",
                      str(stage["failed"]), str(r.get("fetched", 0)), str(r.get("staged", 0)),
                      str(r.get("invalid", 0)))
    errors = document.get("errors", {})
    table.caption = (
        "errors: " + ", ".join(f"{k} {v}" for k, v in errors.items())
        + f"  rolled back: {'yes' if document.get('rolled_back') else 'no'}"
        + (f"\n{document['message']}" if document.get("message") else ""))
    return table
