"""The `pipeworks` command (contracts/interfaces.md, Command line).

Exit status: 0 done, 1 the run failed or was cancelled, 2 bad usage or
configuration (one line on stderr, no traceback).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from typing import Annotated, Any, NoReturn

import typer
from rich.table import Table

from pipeworks import registry
from pipeworks.settings import ConfigError
from starters import client as runs
from starters.common import UsageProblem, console, finish, run, settings
from starters.render import progress_table
from starters.schedules import schedule_app

app = typer.Typer(
    name="pipeworks", help="Durable data pipelines on Temporal.", no_args_is_help=True,
    add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
dev_app = typer.Typer(help="The embedded stack: Temporal dev server, Postgres, the "
                           "pipelines' demo upstreams, a worker.", no_args_is_help=True)
app.add_typer(dev_app, name="dev")
app.add_typer(schedule_app, name="schedule")
# Each pipeline's commands: under its name, or at the top level (the v1 sports commands).
for _pipeline in registry.installed():
    if _pipeline.cli is not None:
        app.add_typer(_pipeline.cli, name=_pipeline.cli_name)


@app.command()
def pipelines(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False
              ) -> None:
    """The installed pipelines: their workflows and upstream settings."""
    listed = [{"name": p.name, "description": p.description, "workflows": p.workflow_names,
               "upstream_settings": list(p.upstream_settings),
               "commands": f"pipeworks {p.cli_name}" if p.cli_name else "pipeworks (top level)",
               "schedule_actions": [a.name for a in p.schedule_actions]}
              for p in registry.installed()]
    if as_json:
        print(json.dumps(listed))
        return
    table = Table(title="pipeworks pipelines")
    table.add_column("pipeline", max_width=30)
    for column in ("workflows", "upstream settings", "commands"):
        table.add_column(column, no_wrap=True)
    for entry in listed:
        table.add_row(f"[bold]{entry['name']}[/]\n[dim]{entry['description']}[/]",
                      "\n".join(entry["workflows"]), "\n".join(entry["upstream_settings"]),
                      str(entry["commands"]))
    console.print(table)


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
        return await finish(await runs.connect(config), workflow_id, True, False)

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
def worker(
    processes: Annotated[int | None, typer.Option(
        min=1, max=64, help="worker processes on this machine, each a whole worker on the"
                            " same task queue (default PIPEWORKS_WORKER_PROCESSES, 1)")] = None,
) -> None:
    """Run a worker against the configured Temporal and Postgres."""
    from workers.supervisor import supervise
    from workers.worker import run_worker

    config = settings()
    count = processes if processes is not None else config.worker_processes
    if count > 1:
        status = run(supervise(config, count))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    run(run_worker(config))
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
    """Every pipeline's demo end to end on the embedded stack, with live progress."""
    from starters.demo import run_demo

    raise typer.Exit(run_demo(settings(), console, keep_stack=keep))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default PIPEWORKS_API_HOST, "
                                                  "127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="port (default "
                                             "PIPEWORKS_API_PORT, 8080)")] = None,
) -> None:
    """The HTTP API (/api/v1, docs at /api/docs) and the web dashboard (/)."""
    from pipeworks.web_settings import WebSettings
    from starters.web.serve import serve as serve_web

    config = settings()
    web = config.of(WebSettings)
    config.resolved_database_url()  # no database: one line now, not a traceback later
    if not web.parsed_keys():
        console.print("[yellow]PIPEWORKS_API_KEYS is not set: every request but /healthz is "
                      "refused[/]", highlight=False)
    serve_web(config, host or web.api_host, port or web.api_port)


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
