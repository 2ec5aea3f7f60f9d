"""`pipeworks f1 ...`: start (or attach to) the F1 workflows, watch a live session, and
report a session's analytics (interfaces.md, F1 pipeline, Command line)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from pipeworks.registry import ScheduleAction
from pipeworks.settings import Settings
from starters.client import StarterError
from starters.common import UsageProblem, console, run, settings, start_and_follow
from starters.f1 import metrics as metrics_module
from starters.f1 import report as report_module
from starters.inputs import tuned_input
from workflows.f1.inputs import F1LiveSessionInput, F1SeasonSyncInput, F1SessionSyncInput

app = typer.Typer(no_args_is_help=True, help="F1 timing data: sync, live, report.")

Wait = Annotated[bool, typer.Option("--wait", help="follow the run to its end")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]
Full = Annotated[bool, typer.Option(
    "--full", help="re-read every stream and delete what the upstream no longer lists")]


def season_values(year: int, meeting: list[int] | None, session_name: list[str] | None,
                  full: bool, max_concurrent: int, calendar_only: bool = False
                  ) -> dict[str, Any]:
    if calendar_only and session_name:
        raise UsageProblem("--calendar-only syncs no session: leave out --session-name")
    values: dict[str, Any] = {"year": year, "mode": "full" if full else "incremental",
                              "max_concurrent_sessions": max_concurrent}
    if meeting:
        values["meeting_keys"] = meeting
    if session_name or calendar_only:
        values["session_names"] = session_name or []
    return values


CalendarOnly = Annotated[bool, typer.Option(
    "--calendar-only", help="refresh the season's meetings and sessions, sync no session")]


@app.command()
def sync(
    year: Annotated[int, typer.Option(help="the season")],
    meeting: Annotated[list[int] | None, typer.Option(
        "--meeting", help="only this meeting (repeatable)")] = None,
    session_name: Annotated[list[str] | None, typer.Option(
        "--session-name", help='only sessions of this name, e.g. "Race" (repeatable)')] = None,
    full: Full = False,
    max_concurrent: Annotated[int, typer.Option(help="sessions at once")] = 4,
    calendar_only: CalendarOnly = False,
    wait: Wait = False,
    as_json: AsJson = False,
) -> None:
    """Start (or attach to) an F1SeasonSyncWorkflow."""
    config = settings()
    request = tuned_input(F1SeasonSyncInput, config, season_values(
        year, meeting, session_name, full, max_concurrent, calendar_only))
    raise typer.Exit(run(start_and_follow(config, request, wait, as_json)))


@app.command("sync-session")
def sync_session(
    key: Annotated[int, typer.Argument(help="session_key")],
    full: Full = False,
    wait: Wait = False,
    as_json: AsJson = False,
) -> None:
    """Start (or attach to) an F1SessionSyncWorkflow."""
    config = settings()
    request = tuned_input(F1SessionSyncInput, config,
                          {"session_key": key, "mode": "full" if full else "incremental"})
    raise typer.Exit(run(start_and_follow(config, request, wait, as_json)))


@app.command()
def live(
    key: Annotated[int, typer.Argument(help="session_key of a running session")],
    poll_seconds: Annotated[float, typer.Option(help="seconds between polls (>= 3)")] = 5.0,
    as_json: AsJson = False,
) -> None:
    """Start (or attach to) an F1LiveSessionWorkflow and watch it to its end."""
    config = settings()
    request = tuned_input(F1LiveSessionInput, config,
                          {"session_key": key, "poll_seconds": poll_seconds})
    raise typer.Exit(run(start_and_follow(config, request, True, as_json)))


@app.command()
def report(
    key: Annotated[int, typer.Argument(help="session_key")],
    lap: Annotated[str | None, typer.Option(
        help="DRIVER:LAP, e.g. 1:17: when and by which run that lap changed")] = None,
    as_json: AsJson = False,
) -> None:
    """A session's stints with degradation, pace deltas, pit cycles, quality checks."""
    config = settings()
    lap_key = None
    if lap is not None:
        driver, _, number = lap.partition(":")
        if not (driver.isdigit() and number.isdigit()):
            raise UsageProblem(f"--lap: DRIVER:LAP with two numbers, not {lap!r}")
        lap_key = (int(driver), int(number))
    document = run(report_module.session_report(config.resolved_database_url(), key, lap_key))
    if document is None:
        raise UsageProblem(f"session {key} is not in f1.sessions: sync it first "
                           f"(pipeworks f1 sync-session {key} --wait)")
    if as_json:
        print(json.dumps(document, ensure_ascii=False, default=str))
    else:
        report_module.render(console, document)


# -- schedule actions -------------------------------------------------------------------

def _sync_action(
    year: Annotated[int, typer.Option(help="the season")],
    meeting: Annotated[list[int] | None, typer.Option("--meeting")] = None,
    session_name: Annotated[list[str] | None, typer.Option("--session-name")] = None,
    full: Full = False,
    max_concurrent: Annotated[int, typer.Option(help="sessions at once")] = 4,
    calendar_only: CalendarOnly = False,
) -> dict[str, Any]:
    """An F1SeasonSyncWorkflow (e.g. the daily calendar refresh: --calendar-only)."""
    try:
        return season_values(year, meeting, session_name, full, max_concurrent,
                             calendar_only)
    except UsageProblem as err:
        raise StarterError(str(err)) from None


def _sync_session_action(
    key: Annotated[int, typer.Argument(help="session_key")],
    full: Full = False,
) -> dict[str, Any]:
    """An F1SessionSyncWorkflow (a finished session's follow-up)."""
    return {"session_key": key, "mode": "full" if full else "incremental"}


def _sync_text(workflow: str, payload: dict[str, Any]) -> str | None:
    if workflow != F1SeasonSyncInput.WORKFLOW:
        return None
    text = f"f1 sync --year {payload.get('year')}"
    text += "".join(f" --meeting {k}" for k in payload.get("meeting_keys") or [])
    names = payload.get("session_names")
    text += "".join(f' --session-name "{n}"' for n in names or [])
    if names == []:
        text += " --calendar-only"
    if payload.get("mode") == "full":
        text += " --full"
    return text


def _sync_session_text(workflow: str, payload: dict[str, Any]) -> str | None:
    if workflow != F1SessionSyncInput.WORKFLOW:
        return None
    full = " --full" if payload.get("mode") == "full" else ""
    return f"f1 sync-session {payload.get('session_key')}{full}"


def _build_sync(config: Settings, values: dict[str, Any]) -> F1SeasonSyncInput:
    return tuned_input(F1SeasonSyncInput, config, values)


def _build_sync_session(config: Settings, values: dict[str, Any]) -> F1SessionSyncInput:
    return tuned_input(F1SessionSyncInput, config, values)


SCHEDULE_ACTIONS = (
    ScheduleAction("f1 sync", _sync_action, _build_sync, _sync_text),
    ScheduleAction("f1 sync-session", _sync_session_action, _build_sync_session,
                   _sync_session_text),
)


metrics_app = typer.Typer(no_args_is_help=True,
                          help="Versions of the derived metrics' parameters.")
app.add_typer(metrics_app, name="metrics")


@metrics_app.command("list")
def metrics_list(as_json: AsJson = False) -> None:
    """The parameter versions; the active one is used by every derivation."""
    rows = run(metrics_module.versions(settings().resolved_database_url()))
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, default=str))
        return
    for row in rows:
        marker = "*" if row["active"] else " "
        console.print(f"{marker} {row['version']}  {row['note'] or ''}  {row['params']}",
                      highlight=False)


@metrics_app.command("add")
def metrics_add(
    version: Annotated[str, typer.Argument(help="a new version name, e.g. v2")],
    set_: Annotated[list[str], typer.Option(
        "--set", help="NAME=VALUE over the active version's parameters (repeatable)")],
    note: Annotated[str, typer.Option(help="why")] = "",
    activate_now: Annotated[bool, typer.Option("--activate", help="make it active")] = False,
) -> None:
    """Add a parameter version (the active one's parameters with --set changes)."""
    try:
        changes = metrics_module.parse_changes(set_)
        created = run(metrics_module.add(settings().resolved_database_url(), version,
                                         changes, note, activate_now))
    except ValueError as err:
        raise UsageProblem(str(err)) from None
    console.print(f"version {version} {'added' if created else 'exists already'}"
                  + (" and active" if activate_now else ""), highlight=False)


@metrics_app.command("activate")
def metrics_activate(
    version: Annotated[str, typer.Argument(help="the version to use from now on")],
) -> None:
    """Activate a version (rolling back = activating the previous one). Each session's
    metrics follow at its next sync (`pipeworks f1 sync --year Y`)."""
    try:
        run(metrics_module.switch(settings().resolved_database_url(), version))
    except LookupError as err:
        raise UsageProblem(str(err).strip("'\"")) from None
    console.print(f"{version} is active; sessions are recomputed at their next sync",
                  highlight=False)
