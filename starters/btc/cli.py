"""`pipeworks btc ...`: start (or attach to) the ingest and the reconciliation, and
report the findings (interfaces.md, Bitcoin reconciliation pipeline, Command line)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from activities.btc.settings import BtcSettings
from pipeworks.registry import ScheduleAction
from pipeworks.settings import Settings
from starters.btc import report as report_module
from starters.common import console, run, settings, start_and_follow
from starters.inputs import tuned_input
from workflows.btc.inputs import BtcIngestInput, BtcReconcileInput

app = typer.Typer(no_args_is_help=True,
                  help="Bitcoin: ingest blocks, reconcile our figures with a node, report.")

Wait = Annotated[bool, typer.Option("--wait", help="follow the run to its end")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]
From = Annotated[int | None, typer.Option("--from", help="first height")]
To = Annotated[int | None, typer.Option(
    "--to", help="last height (default and ceiling: tip - PIPEWORKS_BTC_MIN_CONFIRMATIONS)")]
RecheckDepth = Annotated[int, typer.Option(
    "--recheck-depth", help="without --from: heights re-checked below the last reconciled")]


def _range(from_height: int | None, to_height: int | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if from_height is not None:
        values["from_height"] = from_height
    if to_height is not None:
        values["to_height"] = to_height
    return values


def _network(config: Settings) -> str:
    return config.of(BtcSettings).btc_network


@app.command()
def ingest(from_height: From = None, to_height: To = None, wait: Wait = False,
           as_json: AsJson = False) -> None:
    """Start (or attach to) BtcIngestWorkflow."""
    config = settings()
    request = tuned_input(BtcIngestInput, config,
                          {**_range(from_height, to_height), "network": _network(config)})
    raise typer.Exit(run(start_and_follow(config, request, wait, as_json)))


@app.command()
def reconcile(from_height: From = None, to_height: To = None,
              recheck_depth: RecheckDepth = 144, wait: Wait = False,
              as_json: AsJson = False) -> None:
    """Start (or attach to) BtcReconcileWorkflow."""
    config = settings()
    request = tuned_input(BtcReconcileInput, config, {
        **_range(from_height, to_height), "recheck_depth": recheck_depth,
        "network": _network(config)})
    raise typer.Exit(run(start_and_follow(config, request, wait, as_json)))


@app.command()
def report(run_id: Annotated[str | None, typer.Option(
               "--run", help="only the findings this run saw, added or resolved")] = None,
           as_json: AsJson = False) -> None:
    """Findings by category and severity, open and resolved, with the trend."""
    config = settings()
    document = run(report_module.findings_report(config.resolved_database_url(), run_id))
    if as_json:
        print(json.dumps(document, ensure_ascii=False, default=str))
    else:
        report_module.render(console, document)


# -- schedule actions -------------------------------------------------------------------

def _reconcile_action(from_height: From = None, to_height: To = None,
                      recheck_depth: RecheckDepth = 144) -> dict[str, Any]:
    """A BtcReconcileWorkflow (nightly: without --from, it re-checks the last
    --recheck-depth heights and goes on to the tip)."""
    return {**_range(from_height, to_height), "recheck_depth": recheck_depth}


def _ingest_action(from_height: From = None, to_height: To = None) -> dict[str, Any]:
    """A BtcIngestWorkflow."""
    return _range(from_height, to_height)


def _text(name: str, workflow: str) -> Any:
    def describe(stored: str, payload: dict[str, Any]) -> str | None:
        if stored != workflow:
            return None
        text = f"btc {name}"
        if payload.get("from_height") is not None:
            text += f" --from {payload['from_height']}"
        if payload.get("to_height") is not None:
            text += f" --to {payload['to_height']}"
        if name == "reconcile" and payload.get("recheck_depth", 144) != 144:
            text += f" --recheck-depth {payload['recheck_depth']}"
        return text
    return describe


def _build_reconcile(config: Settings, values: dict[str, Any]) -> BtcReconcileInput:
    return tuned_input(BtcReconcileInput, config, {**values, "network": _network(config)})


def _build_ingest(config: Settings, values: dict[str, Any]) -> BtcIngestInput:
    return tuned_input(BtcIngestInput, config, {**values, "network": _network(config)})


SCHEDULE_ACTIONS = (
    ScheduleAction("btc reconcile", _reconcile_action, _build_reconcile,
                   _text("reconcile", BtcReconcileInput.WORKFLOW)),
    ScheduleAction("btc ingest", _ingest_action, _build_ingest,
                   _text("ingest", BtcIngestInput.WORKFLOW)),
)
