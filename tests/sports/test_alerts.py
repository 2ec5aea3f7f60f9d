"""Failed and rolled-back runs post a Slack-compatible alert to the webhook; a webhook
that is down does not change the run's outcome."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import SecretStr
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from devstack.processes import free_port
from devstack.sports.server import UpstreamServer
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.sports.helpers import start_sync
from tests.worker import running_worker


class Receiver:
    """A webhook endpoint on loopback that keeps what it is sent."""

    def __init__(self, status: int = 200) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                receiver.received.append(json.loads(self.rfile.read(length)))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/hooks/T000/SECRET"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


async def test_a_failed_run_posts_an_alert_with_run_id_category_and_link(
    temporal_env: WorkflowEnvironment, settings: Settings, db: Connection,
    upstream: UpstreamServer, receiver: Receiver,
) -> None:
    competition = upstream.dataset.expected_competitions("A1")[-1]["id"]
    upstream.faults.set(path_status={f"/v1/competitions/{competition}/games": 404})
    alerting = settings.model_copy(update={"alert_webhook_url": SecretStr(receiver.url)})
    async with running_worker(alerting, temporal_env.client):
        handle = await start_sync(temporal_env.client, settings, org_kind="association",
                                  org_id="A1")
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    run_id = (await handle.describe()).run_id
    (alert,) = receiver.received
    fields = alert["pipeworks"]
    assert fields["run_id"] == run_id and fields["workflow_id"] == handle.id
    assert fields["status"] == "failed" and fields["category"] == "permanent"
    assert fields["rolled_back"] is True and "not found" in fields["message"]
    assert fields["link"] == (f"{settings.temporal_ui_url}/namespaces/default/workflows/"
                              f"{handle.id}/{run_id}/history")
    # Slack's shape: a text fallback and blocks.
    assert run_id in json.dumps(alert["blocks"]) and handle.id in alert["text"]
    assert "rolled back" in alert["text"]


async def test_an_isolated_competition_alerts_and_a_clean_run_does_not(
    temporal_env: WorkflowEnvironment, settings: Settings, db: Connection,
    upstream: UpstreamServer, receiver: Receiver,
) -> None:
    alerting = settings.model_copy(update={"alert_webhook_url": SecretStr(receiver.url)})
    async with running_worker(alerting, temporal_env.client):
        clean = await start_sync(temporal_env.client, settings, org_kind="association",
                                 org_id="A1")
        assert (await clean.result())["status"] == "completed"
        assert receiver.received == []
        competition = upstream.dataset.expected_competitions("A2")[0]["id"]
        upstream.faults.set(path_status={f"/v1/competitions/{competition}/teams": 404})
        isolated = await start_sync(temporal_env.client, settings, org_kind="association",
                                    org_id="A2", on_failure="isolate")
        assert (await isolated.result())["status"] == "completed_with_errors"
    (alert,) = receiver.received
    assert alert["pipeworks"]["status"] == "completed_with_errors"
    assert competition in alert["pipeworks"]["message"]


async def test_a_webhook_that_is_down_leaves_the_outcome_and_a_note(
    temporal_env: WorkflowEnvironment, settings: Settings, db: Connection,
    upstream: UpstreamServer,
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}/hook"
    alerting = settings.model_copy(update={"alert_webhook_url": SecretStr(nobody)})
    competition = upstream.dataset.expected_competitions("A1")[0]["id"]
    upstream.faults.set(path_status={f"/v1/competitions/{competition}/teams": 404})
    async with running_worker(alerting, temporal_env.client):
        handle = await start_sync(temporal_env.client, settings, org_kind="association",
                                  org_id="A1", on_failure="isolate")
        result = await handle.result()
    assert result["status"] == "completed_with_errors"
    assert competition in result["message"]  # the outcome's own message comes first
    assert "; could not post the alert: transient: alert webhook at 127.0.0.1:" \
        in result["message"]
    assert "/hook" not in result["message"]  # the path of a webhook URL is its secret
