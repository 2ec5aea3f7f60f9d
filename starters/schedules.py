"""`pipeworks schedule`: Temporal Schedules that start what `sync` and `sync-all` start.

A schedule's id is its NAME. Its action is the same workflow, with the same input, that
the command after `--` would start now (validated the same way, tuning taken from the
settings at create time). Each scheduled run's workflow id is
`<the contract's id>-schedule-<NAME>`, to which Temporal appends the scheduled time, e.g.
`sports-sync-batch-association-schedule-nightly-2026-06-02T03:04:12Z`: the contract's
prefix keeps `WorkflowId STARTS_WITH` queries working, and the name tells two schedules
of the same sync apart (Temporal also sets `TemporalScheduledById` on every run).

Every problem the user can fix raises `StarterError`: one line on stderr, exit 2.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionResult,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleDescription,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    WorkflowExecutionStatus,
)
from temporalio.common import TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from pipeworks import priorities, registry
from pipeworks.inputs import RunInput
from pipeworks.logging import configure_logging
from pipeworks.registry import ScheduleAction
from pipeworks.settings import Settings, load_settings
from pipeworks.temporal_client import connect_temporal
from starters.client import StarterError, search_attributes_registered

schedule_app = typer.Typer(
    help="Temporal Schedules that start what a pipeline's command would start (e.g. a "
         "nightly batch).",
    no_args_is_help=True)
console = Console()

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# How long `trigger` watches the schedule for the outcome of its request; the server
# usually acts within tens of milliseconds.
TRIGGER_WAIT_SECONDS = 5.0
POLL_SECONDS = 0.1
DEFAULT_PAUSE_NOTE = "paused from the pipeworks CLI"
DEFAULT_UNPAUSE_NOTE = "unpaused from the pipeworks CLI"
NEXT_RUNS_SHOWN = 5


class Overlap(StrEnum):
    """What a run due while the previous one still runs does (Temporal's overlap policy)."""

    skip = "skip"
    buffer_one = "buffer-one"
    buffer_all = "buffer-all"
    cancel_other = "cancel-other"
    terminate_other = "terminate-other"
    allow_all = "allow-all"


OVERLAP_POLICIES = {
    Overlap.skip: ScheduleOverlapPolicy.SKIP,
    Overlap.buffer_one: ScheduleOverlapPolicy.BUFFER_ONE,
    Overlap.buffer_all: ScheduleOverlapPolicy.BUFFER_ALL,
    Overlap.cancel_other: ScheduleOverlapPolicy.CANCEL_OTHER,
    Overlap.terminate_other: ScheduleOverlapPolicy.TERMINATE_OTHER,
    Overlap.allow_all: ScheduleOverlapPolicy.ALLOW_ALL,
}
OVERLAP_NAMES = {policy: overlap.value for overlap, policy in OVERLAP_POLICIES.items()}


# -- durations --------------------------------------------------------------------

DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str, option: str) -> timedelta:
    """'90s', '10m', '24h', '1d', '1h30m' (Go-style, like the `temporal` CLI); never
    negative. A bare number is refused: '10' could mean seconds or minutes."""
    cleaned = text.strip().lower()
    if cleaned.startswith("-"):
        raise StarterError(f"{option}: must not be negative, got {text!r}")
    parts = DURATION_PART.findall(cleaned)
    if not cleaned or "".join(n + u for n, u in parts) != cleaned:
        raise StarterError(f"{option}: {text!r} is not a duration; use e.g. 90s, 10m, 24h, "
                           f"1d or 1h30m")
    return timedelta(seconds=sum(float(n) * UNIT_SECONDS[u] for n, u in parts))


def format_duration(value: timedelta) -> str:
    """The inverse of `parse_duration` for whole seconds: 86400 s -> '1d', 5400 s -> '1h30m'."""
    seconds = round(value.total_seconds())
    if seconds == 0:
        return "0s"
    text = ""
    for unit, size in UNIT_SECONDS.items():
        count, seconds = divmod(seconds, size)
        if count:
            text += f"{count}{unit}"
    return text


# -- the action: what a pipeline's command would start ------------------------------

def actions() -> dict[str, ScheduleAction]:
    """Every registered pipeline's schedule actions, by name."""
    return {action.name: action for pipeline in registry.installed()
            for action in pipeline.schedule_actions}


def action_usage() -> str:
    names = " or ".join(f"`-- {name} ...`" for name in actions())
    return (f"give the action after `--`, e.g. {names or '(no pipeline has actions)'}; "
            "`pipeworks schedule create NAME ... -- ACTION --help` tells its options")


def parse_action(argv: Sequence[str], settings: Settings) -> RunInput | None:
    """The workflow input the action's command line asks for; None when it only asked
    for help (which is then printed)."""
    if not argv:
        raise StarterError(action_usage())
    if argv[0].startswith("-"):  # an option of `create` itself, misspelt or after `--`
        raise StarterError(f"no such option {argv[0]!r} before the action; {action_usage()}")
    # An action's name is one or more words (`sync-all`, `f1 sync`): the longest match.
    matching = [a for a in actions().values()
                if list(argv[:len(a.name.split())]) == a.name.split()]
    action = max(matching, key=lambda a: len(a.name.split()), default=None)
    if action is None:
        raise StarterError(f"unknown action {argv[0]!r}; {action_usage()}")
    words = action.name.split()
    for option, reason in action.refused.items():
        if any(arg == option or arg.startswith(f"{option}=") for arg in argv):
            raise StarterError(f"{option}: {reason}")
    # The action's own little command line (a group even for one command, so that the
    # action's name is a command, as it is in `pipeworks` itself).
    actions_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                              rich_markup_mode=None, no_args_is_help=False)
    actions_app.command(words[-1])(action.command)

    @actions_app.callback()
    def _group() -> None:
        """Schedule actions."""

    command = typer.main.get_command(actions_app)
    try:
        values = command.main(args=[words[-1], *argv[len(words):]],
                              prog_name=f"pipeworks schedule create NAME ... -- "
                                        f"{' '.join(words[:-1])}".rstrip(),
                              standalone_mode=False)
    except typer.TyperException as err:  # the action's command line itself is wrong
        raise StarterError(f"{action.name}: {err.format_message()}") from None
    if not isinstance(values, dict):  # `--help`: printed, nothing to create
        return None
    built = action.build(settings, values)
    assert isinstance(built, RunInput)
    return built


def action_text(workflow: str, payload: dict[str, Any]) -> str:
    """The action as the command line that would start it now (defaults left out), e.g.
    'sync-all --kind association'."""
    for action in actions().values():
        text = action.describe(workflow, payload)
        if text is not None:
            return text
    return workflow


def workflow_id_prefix(request: RunInput, name: str) -> str:
    return f"{request.workflow_id}-schedule-{name}"


def build_action(request: RunInput, name: str, settings: Settings,
                 attributes: TypedSearchAttributes = TypedSearchAttributes.empty,
                 ) -> ScheduleActionStartWorkflow:
    """Scheduled runs are background work: batch priority, whatever they sync."""
    workflow = request.WORKFLOW
    payload = request.model_dump(mode="json", exclude_none=True)
    return ScheduleActionStartWorkflow(
        workflow, payload, id=workflow_id_prefix(request, name), task_queue=settings.task_queue,
        static_summary=f"{action_text(workflow, payload)} (schedule {name})",
        priority=priorities.BATCH, typed_search_attributes=attributes)


# -- the spec: when ---------------------------------------------------------------------

@dataclass(frozen=True)
class When:
    """The create command's timing options, checked before anything is sent."""

    cron: str | None
    every: timedelta | None
    offset: timedelta | None
    jitter: timedelta | None
    timezone: str


def parse_when(cron: str | None, every: str | None, offset: str | None, jitter: str | None,
               timezone: str) -> When:
    if (cron is None) == (every is None):
        raise StarterError("give either --cron EXPR or --every DURATION" +
                           (", not both" if cron is not None else ""))
    if cron is not None and not cron.strip():
        raise StarterError("--cron: must not be empty")
    if offset is not None and every is None:
        raise StarterError("--offset: only with --every")
    if every is not None and timezone != "UTC":
        raise StarterError("--timezone: only with --cron (intervals count from the epoch)")
    interval = parse_duration(every, "--every") if every is not None else None
    phase = parse_duration(offset, "--offset") if offset is not None else None
    if interval is not None and interval < timedelta(seconds=1):
        raise StarterError("--every: must be at least 1s")
    if interval is not None and phase is not None and phase >= interval:
        raise StarterError(f"--offset: must be shorter than --every ({every})")
    spread = parse_duration(jitter, "--jitter") if jitter is not None else None
    return When(cron.strip() if cron else None, interval, phase, spread or None,
                timezone.strip() or "UTC")


def build_spec(when: When) -> ScheduleSpec:
    if when.every is not None:  # intervals count from the epoch: no time zone
        return ScheduleSpec(intervals=[ScheduleIntervalSpec(every=when.every,
                                                            offset=when.offset)],
                            jitter=when.jitter)
    return ScheduleSpec(cron_expressions=[when.cron or ""], jitter=when.jitter,
                        time_zone_name=when.timezone)


# Every value of each calendar field, as cron writes it: '*' stands for the whole range.
CALENDAR_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day_of_month", 1, 31),
                   ("month", 1, 12), ("day_of_week", 0, 6))


def _cron_field(ranges: Sequence[ScheduleRange], low: int, high: int) -> str:
    parts = []
    for r in ranges:
        step = f"/{r.step}" if r.step > 1 else ""
        if r.start == low and r.end == high:
            parts.append(f"*{step}")
        elif r.start == r.end:
            parts.append(str(r.start))
        else:
            parts.append(f"{r.start}-{r.end}{step}")
    return ",".join(parts) or "-"


def calendar_as_cron(calendar: ScheduleCalendarSpec) -> str:
    """The server keeps a cron expression as a calendar; shown again as cron."""
    fields = [_cron_field(getattr(calendar, name), low, high)
              for name, low, high in CALENDAR_FIELDS]
    if [(r.start, r.end) for r in calendar.second] != [(0, 0)]:
        fields.insert(0, _cron_field(calendar.second, 0, 59))
    if calendar.year:
        fields.append(_cron_field(calendar.year, 1970, 9999))
    return " ".join(fields)


def spec_text(spec: ScheduleSpec) -> str:
    """'cron 0 3 * * *' / 'every 1d offset 3h', one clause per spec entry."""
    clauses = [f"cron {c}" for c in spec.cron_expressions]
    clauses += [f"cron {calendar_as_cron(c)}" for c in spec.calendars]
    for interval in spec.intervals:
        clause = f"every {format_duration(interval.every)}"
        if interval.offset:
            clause += f" offset {format_duration(interval.offset)}"
        clauses.append(clause)
    return "; ".join(clauses) or "(no times: trigger only)"


# -- Temporal calls ---------------------------------------------------------------------

@contextmanager
def schedule_errors(name: str, doing: str) -> Iterator[None]:
    """Temporal's answers as one line each (exit 2)."""
    try:
        yield
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise StarterError(f"no schedule named {name!r}") from None
        raise StarterError(f"cannot {doing} schedule {name!r}: {err.message}") from None


async def create_schedule(client: Client, name: str, schedule: Schedule) -> None:
    try:
        await client.create_schedule(name, schedule)
    except ScheduleAlreadyRunningError:
        raise StarterError(f"a schedule named {name!r} already exists; delete it first "
                           f"(pipeworks schedule delete {name})") from None
    except RPCError as err:
        if err.status == RPCStatusCode.INVALID_ARGUMENT:
            raise StarterError(_invalid_spec(err.message, schedule.spec)) from None
        raise StarterError(f"cannot create schedule {name!r}: {err.message}") from None


def _invalid_spec(message: str, spec: ScheduleSpec) -> str:
    """The server checks cron expressions, time zones and intervals itself (so the rules
    are exactly Temporal's); its answer is put against the option that caused it."""
    problem = message.removeprefix("Invalid schedule spec: ")
    if "time zone" in problem:
        return f"--timezone: {problem}"
    if spec.cron_expressions:
        return f"--cron {spec.cron_expressions[0]!r}: {problem}"
    return f"--every/--offset: {problem}"


async def describe_schedule(client: Client, name: str) -> ScheduleDescription:
    with schedule_errors(name, "describe"):
        return await client.get_schedule_handle(name).describe()


async def schedule_names(client: Client) -> list[str]:
    """The namespace's schedules that start one of our workflow types (Temporal's list is
    eventually consistent: one created a moment ago may be missing for a second)."""
    ours = {name for pipeline in registry.installed() for name in pipeline.workflow_names}
    try:
        return sorted([s.id async for s in await client.list_schedules()
                       if s.schedule is None  # a server without advanced visibility
                       or getattr(s.schedule.action, "workflow", None) in ours])
    except RPCError as err:
        raise StarterError(f"cannot list schedules: {err.message}") from None


async def pipeworks_schedules(client: Client, settings: Settings) -> list[ScheduleDescription]:
    """The schedules that start workflows on this task queue, fully described (a list
    entry may lag behind a pause or an unpause; a description does not)."""
    described = await asyncio.gather(
        *(_describe_if_present(client, name) for name in await schedule_names(client)))
    return [d for d in described if d is not None and _on_queue(d, settings.task_queue)]


async def _describe_if_present(client: Client, name: str) -> ScheduleDescription | None:
    try:
        return await client.get_schedule_handle(name).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:  # deleted since it was listed
            return None
        raise StarterError(f"cannot describe schedule {name!r}: {err.message}") from None


def _on_queue(description: ScheduleDescription, task_queue: str) -> bool:
    action = description.schedule.action
    return isinstance(action, ScheduleActionStartWorkflow) and action.task_queue == task_queue


async def pause_schedule(client: Client, name: str, note: str | None) -> None:
    with schedule_errors(name, "pause"):
        await client.get_schedule_handle(name).pause(note=note or DEFAULT_PAUSE_NOTE)


async def unpause_schedule(client: Client, name: str, note: str | None) -> None:
    with schedule_errors(name, "unpause"):
        await client.get_schedule_handle(name).unpause(note=note or DEFAULT_UNPAUSE_NOTE)


async def delete_schedule(client: Client, name: str) -> None:
    with schedule_errors(name, "delete"):
        await client.get_schedule_handle(name).delete()


@dataclass
class Triggered:
    """What a trigger led to: `started` a run, `skipped` (the overlap policy refused it
    while another run goes on), or `pending` (buffered, or not acted on yet)."""

    outcome: str
    overlap: str
    workflow_id: str | None = None
    run_id: str | None = None
    running: list[str] = field(default_factory=list)


async def trigger_schedule(client: Client, name: str) -> Triggered:
    """Run now, under the schedule's own overlap policy; then watch the schedule's
    counters briefly to tell the user what came of it."""
    handle = client.get_schedule_handle(name)
    with schedule_errors(name, "trigger"):
        before = await handle.describe()
        overlap = OVERLAP_NAMES.get(before.schedule.policy.overlap, "?")
        await handle.trigger()
        deadline = asyncio.get_running_loop().time() + TRIGGER_WAIT_SECONDS
        while True:
            info = (await handle.describe()).info
            running = [a.workflow_id for a in _starts(info.running_actions)]
            last = _last_start(info.recent_actions)
            if info.num_actions > before.info.num_actions and last is not None:
                return Triggered("started", overlap, last.workflow_id,
                                 last.first_execution_run_id, running)
            if info.num_actions_skipped_overlap > before.info.num_actions_skipped_overlap:
                return Triggered("skipped", overlap, running=running)
            if asyncio.get_running_loop().time() >= deadline:
                return Triggered("pending", overlap, running=running)
            await asyncio.sleep(POLL_SECONDS)


def _starts(actions: Sequence[Any]) -> list[ScheduleActionExecutionStartWorkflow]:
    """Workflow starts among a schedule's actions (the only kind there is today)."""
    return [a for a in actions if isinstance(a, ScheduleActionExecutionStartWorkflow)]


def _last_start(recent: Sequence[ScheduleActionResult]
                ) -> ScheduleActionExecutionStartWorkflow | None:
    starts = _starts([r.action for r in recent])
    return starts[-1] if starts else None


async def run_status(client: Client, workflow_id: str, run_id: str) -> str:
    """Temporal's status of one scheduled run, lower case ('completed', 'failed', ...)."""
    try:
        described = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
    except RPCError:
        return "unknown"  # e.g. past the namespace's retention
    status = described.status or WorkflowExecutionStatus.RUNNING
    return status.name.lower()


# -- the document `list --json` / `describe --json` print --------------------------------

def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def schedule_document(client: Client, settings: Settings,
                            description: ScheduleDescription) -> dict[str, Any]:
    schedule, info = description.schedule, description.info
    action = schedule.action
    payload = await _action_payload(client, action)
    workflow = action.workflow if isinstance(action, ScheduleActionStartWorkflow) else "?"
    next_runs = [rfc3339(t) for t in info.next_action_times[:NEXT_RUNS_SHOWN]]
    jitter = schedule.spec.jitter
    return {
        "name": description.id,
        "action": action_text(workflow, payload),
        "workflow": workflow,
        "workflow_id_prefix": action.id if isinstance(action, ScheduleActionStartWorkflow)
        else None,
        "task_queue": action.task_queue if isinstance(action, ScheduleActionStartWorkflow)
        else None,
        "input": payload,
        "spec": spec_text(schedule.spec),
        "timezone": schedule.spec.time_zone_name or "UTC",
        "jitter": format_duration(jitter) if jitter else None,
        "jitter_seconds": jitter.total_seconds() if jitter else 0.0,
        "overlap": OVERLAP_NAMES.get(schedule.policy.overlap, str(schedule.policy.overlap)),
        "paused": schedule.state.paused,
        "note": schedule.state.note,
        "next_run": next_runs[0] if next_runs and not schedule.state.paused else None,
        "next_runs": next_runs,
        "last_run": await _last_run(client, info.recent_actions),
        "running": [a.workflow_id for a in _starts(info.running_actions)],
        "actions_taken": info.num_actions,
        "skipped_overlap": info.num_actions_skipped_overlap,
        "created_at": rfc3339(info.created_at),
        "web_ui": (f"{settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}"
                   f"/schedules/{description.id}"),
    }


async def _last_run(client: Client, recent: Sequence[ScheduleActionResult]
                    ) -> dict[str, Any] | None:
    """The newest run the schedule started, with its status now."""
    for result in reversed(recent):
        start = result.action
        if isinstance(start, ScheduleActionExecutionStartWorkflow):
            return {"workflow_id": start.workflow_id, "run_id": start.first_execution_run_id,
                    "scheduled_at": rfc3339(result.scheduled_at),
                    "started_at": rfc3339(result.started_at),
                    "status": await run_status(client, start.workflow_id,
                                               start.first_execution_run_id)}
    return None


async def _action_payload(client: Client, action: Any) -> dict[str, Any]:
    """The workflow input the schedule sends (stored encoded on the server)."""
    if not isinstance(action, ScheduleActionStartWorkflow) or not action.args:
        return {}
    args = list(action.args)
    if isinstance(args[0], Payload):
        args = await client.data_converter.decode(args)
    return args[0] if isinstance(args[0], dict) else {"input": args[0]}


# -- human output -----------------------------------------------------------------------

def when_text(document: dict[str, Any]) -> str:
    """'0 3 * * * UTC, jitter 10m' / 'every 1d offset 3h'."""
    text = str(document["spec"])
    if text.startswith("cron "):
        text = f"{text.removeprefix('cron ')} {document['timezone']}"
    if document["jitter"]:
        text += f", jitter {document['jitter']}"
    return text


def moment_text(value: str | None, now: datetime | None = None, zone: str = " UTC") -> str:
    """'2026-06-02 03:04 UTC', and with `now` ' (in 12h3m)' after it."""
    if value is None:
        return "-"
    moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    if now is None:
        return f"{moment:%Y-%m-%d %H:%M}{zone}"
    delta = moment - now
    distance = format_duration(timedelta(seconds=round(abs(delta.total_seconds()) / 60) * 60))
    if distance == "0s":
        distance = "<1m"
    relative = f"in {distance}" if delta.total_seconds() >= 0 else f"{distance} ago"
    return f"{moment:%Y-%m-%d %H:%M}{zone} ({relative})"


def last_run_text(document: dict[str, Any], now: datetime | None = None,
                  zone: str = " UTC") -> str:
    last = document["last_run"]
    if last is None:
        return "never"
    return f"{last['status']}, {moment_text(last['started_at'], now, zone)}"


def schedules_table(documents: Sequence[dict[str, Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD)
    # The overlap policy is left to `describe`, so that a row fits 160 columns more often.
    for column in ("name", "action", "when", "next run (UTC)", "last run (UTC)", "paused",
                   "note"):
        table.add_column(column, overflow="fold", no_wrap=column in ("name", "paused"))
    for d in documents:
        table.add_row(d["name"], d["action"], when_text(d),
                      moment_text(d["next_run"], zone=""), last_run_text(d, zone=""),
                      "[yellow]yes[/]" if d["paused"] else "no", d["note"] or "")
    return table


def detail_table(document: dict[str, Any]) -> Table:
    now = datetime.now(UTC)
    table = Table(title=f"schedule {document['name']}", title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    rows = [
        ("action", document["action"]), ("workflow", document["workflow"]),
        ("workflow ids", f"{document['workflow_id_prefix']}-<scheduled time>"),
        ("task queue", document["task_queue"]), ("input", json.dumps(document["input"])),
        ("when", when_text(document)), ("overlap", document["overlap"]),
        ("paused", "yes" if document["paused"] else "no"), ("note", document["note"] or ""),
        ("next runs" + (" (skipped while paused)" if document["paused"] else ""),
         "\n".join(moment_text(t, now) for t in document["next_runs"]) or "-"),
        ("last run", last_run_text(document, now)
         + (f"\n{document['last_run']['workflow_id']}" if document["last_run"] else "")),
        ("running", "\n".join(document["running"]) or "-"),
        ("actions taken", f"{document['actions_taken']} "
                          f"({document['skipped_overlap']} skipped by the overlap policy)"),
        ("web ui", document["web_ui"]),
    ]
    for key, value in rows:
        table.add_row(key, str(value))
    return table


# -- commands -------------------------------------------------------------------------

def _settings() -> Settings:
    loaded = load_settings()
    configure_logging(loaded.log_format, loaded.log_level)
    return loaded


def _check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise StarterError(f"NAME: {name!r} must be 1-100 letters, digits, '.', '_' or '-', "
                           "starting with a letter or digit")
    return name


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False))


@schedule_app.command(context_settings={"ignore_unknown_options": True})
def create(
    name: Annotated[str, typer.Argument(metavar="NAME",
                                        help="schedule id, e.g. nightly-associations")],
    action: Annotated[list[str] | None, typer.Argument(
        metavar="-- sync-all|sync [OPTIONS]",
        help="what each run starts, as after `pipeworks`: `-- sync-all --kind association` "
             "or `-- sync --account 3`")] = None,
    cron: Annotated[str | None, typer.Option(
        help='cron expression, e.g. "0 3 * * *" (03:00 daily)')] = None,
    every: Annotated[str | None, typer.Option(help="interval instead, e.g. 24h, 30m")] = None,
    offset: Annotated[str | None, typer.Option(
        help="with --every: shift from the epoch, e.g. 3h for 03:00 UTC daily")] = None,
    jitter: Annotated[str | None, typer.Option(
        help="start each run up to this much later at random, e.g. 10m")] = None,
    overlap: Annotated[Overlap, typer.Option(
        help="when a run is due while the last one still runs")] = Overlap.skip,
    timezone: Annotated[str, typer.Option(help="IANA time zone of --cron")] = "UTC",
    paused: Annotated[bool, typer.Option("--paused", help="create it paused")] = False,
    note: Annotated[str | None, typer.Option(help="a note shown with the schedule")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Create a schedule that starts what `sync` / `sync-all` would start."""
    _check_name(name)
    when = parse_when(cron, every, offset, jitter, timezone)
    config = _settings()
    request = parse_action(action or [], config)
    if request is None:
        return
    async def go() -> dict[str, Any]:
        client = await connect_temporal(config)
        attributes = (TypedSearchAttributes(request.initial_search_attributes())
                      if await search_attributes_registered(client, config.temporal_namespace)
                      else TypedSearchAttributes.empty)
        schedule = Schedule(
            action=build_action(request, name, config, attributes), spec=build_spec(when),
            policy=SchedulePolicy(overlap=OVERLAP_POLICIES[overlap]),
            state=ScheduleState(note=note, paused=paused))
        await create_schedule(client, name, schedule)
        return await schedule_document(client, config, await describe_schedule(client, name))

    document = asyncio.run(go())
    if as_json:
        _print_json(document)
        return
    console.print(f"created schedule [bold]{name}[/]: {document['action']}, "
                  f"{when_text(document)}, overlap {document['overlap']}"
                  f"{', paused' if paused else ''}", highlight=False)
    if document["next_runs"]:
        console.print(f"next run {moment_text(document['next_runs'][0], datetime.now(UTC))}",
                      highlight=False)
    console.print(f"runs are {document['workflow_id_prefix']}-<scheduled time>",
                  highlight=False)
    console.print(document["web_ui"], highlight=False)


@schedule_app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Schedules that start runs on this task queue (PIPEWORKS_TASK_QUEUE)."""
    config = _settings()

    async def go() -> list[dict[str, Any]]:
        client = await connect_temporal(config)
        return [await schedule_document(client, config, d)
                for d in await pipeworks_schedules(client, config)]

    documents = asyncio.run(go())
    if as_json:
        _print_json(documents)
    elif documents:
        console.print(schedules_table(documents))
    else:
        console.print(f"no schedules start runs on task queue {config.task_queue!r}",
                      highlight=False)


@schedule_app.command()
def describe(
    name: Annotated[str, typer.Argument(metavar="NAME", help="schedule name")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Everything about one schedule: action, timing, policy, next and recent runs."""
    config = _settings()

    async def go() -> dict[str, Any]:
        client = await connect_temporal(config)
        return await schedule_document(client, config, await describe_schedule(client, name))

    document = asyncio.run(go())
    if as_json:
        _print_json(document)
    else:
        console.print(detail_table(document))


@schedule_app.command()
def pause(
    name: Annotated[str, typer.Argument(metavar="NAME", help="schedule name")],
    note: Annotated[str | None, typer.Option(help="why; shown with the schedule")] = None,
) -> None:
    """Stop starting runs until `unpause` (a running run goes on)."""
    config = _settings()

    async def go() -> None:
        await pause_schedule(await connect_temporal(config), name, note)

    asyncio.run(go())
    console.print(f"paused schedule [bold]{name}[/]", highlight=False)


@schedule_app.command()
def unpause(
    name: Annotated[str, typer.Argument(metavar="NAME", help="schedule name")],
    note: Annotated[str | None, typer.Option(help="shown with the schedule")] = None,
) -> None:
    """Start runs at the scheduled times again (missed times are not made up)."""
    config = _settings()

    async def go() -> None:
        await unpause_schedule(await connect_temporal(config), name, note)

    asyncio.run(go())
    console.print(f"unpaused schedule [bold]{name}[/]", highlight=False)


@schedule_app.command()
def trigger(
    name: Annotated[str, typer.Argument(metavar="NAME", help="schedule name")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Start a run now, as if it were due: the overlap policy still applies."""
    config = _settings()

    async def go() -> Triggered:
        return await trigger_schedule(await connect_temporal(config), name)

    result = asyncio.run(go())
    if as_json:
        _print_json({"schedule": name, "outcome": result.outcome, "overlap": result.overlap,
                     "workflow_id": result.workflow_id, "run_id": result.run_id,
                     "running": result.running})
        return
    console.print(_trigger_text(name, result), highlight=False)


def _trigger_text(name: str, result: Triggered) -> str:
    running = ", ".join(result.running) or "another run"
    if result.outcome == "started":
        return (f"started [bold]{result.workflow_id}[/] (schedule {name})\n"
                f"follow it: pipeworks watch {result.workflow_id}")
    if result.outcome == "skipped":
        return f"skipped: {running} still runs (overlap policy {result.overlap})"
    if result.running:
        return f"triggered {name}; buffered behind {running} (overlap policy {result.overlap})"
    return (f"triggered {name}; nothing started yet, see `pipeworks schedule describe "
            f"{name}`")


@schedule_app.command()
def delete(name: Annotated[str, typer.Argument(metavar="NAME", help="schedule name")]) -> None:
    """Delete a schedule (a run it started goes on)."""
    config = _settings()

    async def go() -> None:
        await delete_schedule(await connect_temporal(config), name)

    asyncio.run(go())
    console.print(f"deleted schedule [bold]{name}[/]", highlight=False)


__all__ = ["schedule_app"]
