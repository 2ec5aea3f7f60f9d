"""The sports pipeline's commands, at the top level of `pipeworks` as in v1: `sync`,
`sync-all` and `accounts`; and its schedule actions (`sync`, `sync-all`)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from pipeworks.registry import ScheduleAction
from pipeworks.settings import Settings
from starters.client import StarterError
from starters.common import UsageProblem, console, run, settings, start_and_follow
from starters.inputs import tuned_input
from starters.sports import accounts as accounts_cmd
from workflows.sports.inputs import AccountSyncInput, BatchSyncInput

app = typer.Typer(no_args_is_help=True)
accounts_app = typer.Typer(help="Accounts whose organisations get synced.",
                           no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")


def sync_values(account: int | None, org_kind: str | None, org_id: str | None,
                on_failure: str, problem: type[Exception]) -> dict[str, Any]:
    if account is not None and (org_kind is not None or org_id is not None):
        raise problem("give either --account or --org-kind and --org-id, not both")
    if account is None and (org_kind is None or org_id is None):
        raise problem("give --account ID, or both --org-kind and --org-id")
    values: dict[str, Any] = {"account_id": account, "org_kind": org_kind, "org_id": org_id,
                              "on_failure": on_failure}
    return {k: v for k, v in values.items() if v is not None}


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
    values = sync_values(account, org_kind, org_id, on_failure, UsageProblem)
    config = settings()
    if since is not None:
        values["games_updated_since"] = since
    request = tuned_input(AccountSyncInput, config, values)
    raise typer.Exit(run(start_and_follow(config, request, wait, as_json)))


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
    request = tuned_input(BatchSyncInput, config, {
        "kind": kind, "max_concurrent": max_concurrent, "on_failure": on_failure})
    raise typer.Exit(run(start_and_follow(config, request, wait, as_json)))


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


# -- schedule actions: what `sync` and `sync-all` start, minus what makes no sense for a
# recurring run (`--since` would reuse one fixed time; `--wait`/`--json` belong to a
# command, not to a run).

def _sync_action(
    account: Annotated[int | None, typer.Option("--account", help="account id")] = None,
    org_kind: Annotated[str | None, typer.Option(help="association | club")] = None,
    org_id: Annotated[str | None, typer.Option(help="organisation id upstream")] = None,
    on_failure: Annotated[str, typer.Option(help="rollback | isolate")] = "rollback",
) -> dict[str, Any]:
    """An AccountSyncWorkflow for one account or organisation."""
    return sync_values(account, org_kind, org_id, on_failure, StarterError)


def _sync_all_action(
    kind: Annotated[str, typer.Option(help="club | association | all")],
    max_concurrent: Annotated[int, typer.Option(help="children at once")] = 4,
    on_failure: Annotated[str, typer.Option(help="rollback | isolate (per account)")] =
        "rollback",
) -> dict[str, Any]:
    """A BatchSyncWorkflow: one account sync per matching account."""
    return {"kind": kind, "max_concurrent": max_concurrent, "on_failure": on_failure}


def _on_failure_text(payload: dict[str, Any]) -> str:
    if payload.get("on_failure", "rollback") != "rollback":
        return f" --on-failure {payload['on_failure']}"
    return ""


def _sync_text(workflow: str, payload: dict[str, Any]) -> str | None:
    if workflow != AccountSyncInput.WORKFLOW:
        return None
    text = (f"sync --account {payload['account_id']}" if "account_id" in payload
            else f"sync --org-kind {payload.get('org_kind')} --org-id {payload.get('org_id')}")
    return text + _on_failure_text(payload)


def _sync_all_text(workflow: str, payload: dict[str, Any]) -> str | None:
    if workflow != BatchSyncInput.WORKFLOW:
        return None
    text = f"sync-all --kind {payload.get('kind')}"
    if payload.get("max_concurrent", 4) != 4:
        text += f" --max-concurrent {payload['max_concurrent']}"
    return text + _on_failure_text(payload)


def _build_sync(config: Settings, values: dict[str, Any]) -> AccountSyncInput:
    return tuned_input(AccountSyncInput, config, values)


def _build_sync_all(config: Settings, values: dict[str, Any]) -> BatchSyncInput:
    return tuned_input(BatchSyncInput, config, values)


SINCE_REFUSED = ("every run would reuse one fixed time; schedule full syncs, and run "
                 "`pipeworks sync --since TS` on demand")
SCHEDULE_ACTIONS = (
    ScheduleAction("sync", _sync_action, _build_sync, _sync_text,
                   refused={"--since": SINCE_REFUSED}),
    ScheduleAction("sync-all", _sync_all_action, _build_sync_all, _sync_all_text),
)
