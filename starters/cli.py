"""The `pipeworks` command (contracts/interfaces.md, Command line).

Exit status: 0 done, 1 the run failed or was cancelled, 2 bad usage or
configuration (one line on stderr, no traceback).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import traceback
from collections.abc import Coroutine
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from pipeworks.logging import configure_logging
from pipeworks.settings import ConfigError, Settings, load_settings
from starters import accounts as accounts_cmd
from starters import client as runs
from starters.inputs import validated_input
from starters.render import LiveProgress, progress_table
from starters.schedules import schedule_app
from workflows.inputs import AccountSyncInput, BatchSyncInput

T = TypeVar("T")
app = typer.Typer(
    name="pipeworks", help="Durable data pipelines on Temporal.", no_args_is_help=True,
    add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
dev_app = typer.Typer(help="The embedded stack: Temporal dev server, Postgres, demo upstream, "
                           "a worker.", no_args_is_help=True)
accounts_app = typer.Typer(help="Accounts whose organisations get synced.",
                           no_args_is_help=True)
app.add_typer(dev_app, name="dev")
app.add_typer(accounts_app, name="accounts")
app.add_typer(schedule_app, name="schedule")
console = Console()
errors = Console(stderr=True)


class UsageProblem(Exception):
    """Bad arguments: one line on stderr, exit 2."""


def settings() -> Settings:
    loaded = load_settings()
    configure_logging(loaded.log_format, loaded.log_level)
    return loaded


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def _finish(client: Any, workflow_id: str, wait: bool, as_json: bool,
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


@app.command()
def sync(
    account: Annotated[int | None, typer.Option("--account", help="account id")] = None,
    org_kind: Annotated[str | None, typer.Option(help="association | club")] = None,
    org_id: Annotated[str | None, typer.Option(help="organisation id upstream")] = None,
    since: Annotated[str | None, typer.Option(
        help="incremental: games updated since this RFC 3339 time")] = None,
    on_failure: Annotated[str, typer.Option(help="rollback | isolate")] = "rollback",
    wait: Annotated[bool, typer.Option("--wait", help="follow the run to its end")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Start (or attach to) an AccountSyncWorkflow."""
    direct = org_kind is not None or org_id is not None
    if account is not None and direct:
        raise UsageProblem("give either --account or --org-kind and --org-id, not both")
    if account is None and (org_kind is None or org_id is None):
        raise UsageProblem("give --account ID, or both --org-kind and --org-id")
    config = settings()
    values: dict[str, Any] = {**runs.run_options(config), "on_failure": on_failure}
    if account is not None:
        values["account_id"] = account
    if org_kind is not None:
        values["org_kind"] = org_kind
    if org_id is not None:
        values["org_id"] = org_id
    if since is not None:
        values["games_updated_since"] = since
    request: AccountSyncInput = validated_input(AccountSyncInput, values)

    raise typer.Exit(run(_start_and_follow(config, request, wait, as_json)))


@app.command("sync-all")
def sync_all(
    kind: Annotated[str, typer.Option(help="club | association | all")],
    max_concurrent: Annotated[int, typer.Option(help="children at once")] = 4,
    on_failure: Annotated[str, typer.Option(help="rollback | isolate (per account)")] =
        "rollback",
    wait: Annotated[bool, typer.Option("--wait", help="follow the run to its end")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Start a BatchSyncWorkflow: one account sync per matching account."""
    config = settings()
    request: BatchSyncInput = validated_input(BatchSyncInput, {
        **runs.run_options(config), "kind": kind, "max_concurrent": max_concurrent,
        "on_failure": on_failure})

    raise typer.Exit(run(_start_and_follow(config, request, wait, as_json)))


async def _start_and_follow(config: Settings, request: AccountSyncInput | BatchSyncInput,
                            wait: bool, as_json: bool) -> int:
    client = await runs.connect(config)
    started = await runs.start_run(client, config, request)
    _announce(config, started, request.workflow_id, as_json, wait)
    return await _finish(client, request.workflow_id, wait, as_json,
                         started.handle.result_run_id)


def _announce(config: Settings, started: runs.Started, workflow_id: str, as_json: bool,
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


@app.command()
def status(
    workflow_id: Annotated[str, typer.Argument(metavar="ID")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Query a run's progress."""
    config = settings()

    async def go() -> dict[str, Any]:
        return await runs.query_progress(await runs.connect(config), workflow_id)

    document = run(go())
    if as_json:
        print(json.dumps(document, ensure_ascii=False))
    else:
        console.print(progress_table(document))


@app.command()
def watch(workflow_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Live progress bars until the run ends."""
    config = settings()

    async def go() -> int:
        return await _finish(await runs.connect(config), workflow_id, True, False)

    raise typer.Exit(run(go()))


@app.command()
def cancel(
    workflow_id: Annotated[str, typer.Argument(metavar="ID")],
    reason: Annotated[str, typer.Option(help="why; kept in the run's progress")] =
        "cancelled from the CLI",
) -> None:
    """Signal `cancel`: the run stops, undoes its changes and ends cancelled."""
    config = settings()

    async def go() -> None:
        await runs.send_cancel(await runs.connect(config), workflow_id, reason)

    run(go())
    console.print(f"cancel sent to [bold]{workflow_id}[/]: {reason}", highlight=False)


@app.command()
def worker() -> None:
    """Run a worker against the configured Temporal and Postgres."""
    from workers.worker import run_worker

    run(run_worker(settings()))
    # Drained and closed: nothing is left to finalize. Interpreter finalization
    # with the SDK's Rust runtime threads still alive can abort the process
    # (PyGILState_Release), which would turn a clean drain into exit status 134.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@app.command()
def health(
    address: Annotated[str | None, typer.Option(
        help="the worker's health host:port (default PIPEWORKS_HEALTH_ADDRESS)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Ask a worker whether it is alive and ready (exit 0 ready, 1 not ready)."""
    from starters import health as health_cmd

    where = address if address is not None else settings().health_address
    document = health_cmd.probe(where)
    if as_json:
        print(json.dumps(document))
    else:
        console.print(health_cmd.health_table(where, document))
    raise typer.Exit(0 if document.get("ready") else 1)


@accounts_app.command("add")
def accounts_add(
    account_id: Annotated[int, typer.Option("--id", help="account id")],
    kind: Annotated[str, typer.Option(help="club | association")],
    org_id: Annotated[str, typer.Option(help="organisation id upstream")],
    name: Annotated[str, typer.Option(help="display name")],
) -> None:
    """Add or update an account."""
    if kind not in ("club", "association"):
        raise UsageProblem(f"--kind must be club or association, not {kind!r}")
    if not 0 <= account_id < 2**63 or not org_id.strip() or not name.strip():
        raise UsageProblem("--id must be a number >= 0 and --org-id and --name must not be "
                           "empty")
    config = settings()
    created = run(accounts_cmd.add_account(
        config.resolved_database_url(), account_id, kind, org_id, name))
    console.print(f"account {account_id} {'added' if created else 'updated'}: {kind} "
                  f"{org_id} ({name})", highlight=False)


@accounts_app.command("list")
def accounts_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List accounts."""
    rows = run(accounts_cmd.list_accounts(settings().resolved_database_url()))
    if as_json:
        print(json.dumps(rows, ensure_ascii=False))
    else:
        console.print(accounts_cmd.accounts_table(rows))


@dev_app.command("up")
def dev_up() -> None:
    """Start what is not running yet (idempotent)."""
    from starters import dev

    dev.up(settings(), console)


@dev_app.command("down")
def dev_down() -> None:
    """Stop exactly what `dev up` started."""
    from starters import dev

    dev.down(settings(), console)


@dev_app.command("status")
def dev_status() -> None:
    """Show what runs."""
    from starters import dev

    dev.status(settings(), console)


@app.command()
def demo(
    keep: Annotated[bool, typer.Option(help="leave the stack running afterwards")] = True,
) -> None:
    """The main job end to end on the embedded stack, with live progress."""
    from starters.demo import run_demo

    raise typer.Exit(run_demo(settings(), console, keep_stack=keep))


@app.command("codec-server")
def codec_server() -> None:
    """Decrypt payloads for the Web UI and the `temporal` CLI (remote codec protocol)."""
    from starters.codec_server import serve

    raise typer.Exit(serve(settings(), console))


def _fail(message: str) -> int:
    print(f"pipeworks: {message}", file=sys.stderr)
    return 2


def run_command(argv: list[str] | None = None) -> int:
    """Runs one command; returns its exit status (contract: 0, 1, 2; 130 interrupted)."""
    try:
        result = app(args=argv, standalone_mode=False)
    except typer.Exit as done:
        return done.exit_code
    except typer.TyperException as err:  # bad usage found while parsing the command line
        message = err.format_message()
        if "\n" in message:  # a group called without a command: its help is the answer
            print(message, file=sys.stderr)
            return 2
        return _fail(message)
    except (ConfigError, UsageProblem, runs.StarterError) as err:
        return _fail(str(err))
    except typer.Abort:
        return 130
    except KeyboardInterrupt:
        return 130
    return int(result) if isinstance(result, int) else 0


def main(argv: list[str] | None = None) -> NoReturn:
    """The `pipeworks` program. Ends the process without interpreter finalization: the
    Temporal client's Rust threads outlive the event loop, and finalizing with them alive
    can abort the process ("PyGILState_Release", temporalio/sdk-python#300), turning a
    finished command into exit status 134."""
    try:
        code = run_command(argv)
    except SystemExit as done:  # sys.exit() somewhere below: keep its meaning
        if done.code is not None and not isinstance(done.code, int):
            print(done.code, file=sys.stderr)
        code = done.code if isinstance(done.code, int) else int(done.code is not None)
    except BaseException:  # a bug: show it as Python would, then stop the same way
        traceback.print_exc()
        code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    main()


__all__ = ["app", "main", "run_command"]
