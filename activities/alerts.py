"""The alert a failed or rolled-back run posts to PIPEWORKS_ALERT_WEBHOOK_URL, as
Slack-compatible JSON (`text` for any receiver, `blocks` for Slack)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from temporalio import activity

from pipeworks.activity_errors import categorized_errors
from pipeworks.errors import PermanentError, TransientError

WEBHOOK_TIMEOUT_SECONDS = 10.0


@dataclass
class RunAlert:
    workflow_id: str
    run_id: str
    workflow_type: str
    pipeline: str
    status: str                 # failed | cancelled | completed_with_errors | breaker_open
    rolled_back: bool
    category: str               # transient | permanent | data | system | cancelled
    message: str


def web_ui_link(ui_url: str, namespace: str, workflow_id: str, run_id: str) -> str:
    return (f"{ui_url.rstrip('/')}/namespaces/{quote(namespace, safe='')}/workflows/"
            f"{quote(workflow_id, safe='')}/{quote(run_id, safe='')}/history")


def alert_payload(alert: RunAlert, link: str) -> dict[str, Any]:
    what = {"failed": "failed", "cancelled": "was cancelled",
            "completed_with_errors": "completed with errors",
            "breaker_open": "opened a circuit breaker"}.get(alert.status, alert.status)
    # The run's message says what was undone ("changes rolled back", "nothing was
    # changed", "rolled back competitions ..."): it is not said twice.
    headline = f"pipeworks: {alert.workflow_type} {alert.workflow_id} {what} ({alert.category})"
    return {
        "text": f"{headline}: {alert.message} {link}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{headline}*"}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": f"*Run id*\n`{alert.run_id}`"},
                {"type": "mrkdwn", "text": f"*Category*\n{alert.category}"},
                {"type": "mrkdwn", "text": f"*Pipeline*\n{alert.pipeline}"},
                {"type": "mrkdwn", "text": f"*Status*\n{alert.status}"
                                           f"{' (rolled back)' if alert.rolled_back else ''}"},
            ]},
            {"type": "section", "text": {"type": "mrkdwn", "text": alert.message}},
            {"type": "actions", "elements": [{
                "type": "button", "text": {"type": "plain_text", "text": "Open in Temporal"},
                "url": link}]},
        ],
        # Not Slack's: for receivers that route on fields rather than text.
        "pipeworks": {**alert.__dict__, "link": link},
    }


class AlertActivities:
    def __init__(self, webhook_url: str | None, ui_url: str, namespace: str) -> None:
        self._url = webhook_url
        self._ui_url = ui_url
        self._namespace = namespace
        # The path of a Slack webhook URL is its secret: errors name the host only.
        self._where = urlsplit(webhook_url).netloc if webhook_url else ""

    @activity.defn(name="send_run_alert")
    async def send_run_alert(self, alert: RunAlert) -> bool:
        """False when no webhook is configured."""
        if not self._url:
            return False
        link = web_ui_link(self._ui_url, self._namespace, alert.workflow_id, alert.run_id)
        with categorized_errors():
            async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_SECONDS) as http:
                try:
                    response = await http.post(self._url, json=alert_payload(alert, link))
                except httpx.HTTPError as err:
                    raise TransientError(
                        f"alert webhook at {self._where}: {type(err).__name__}") from None
            if response.status_code >= 500 or response.status_code == 429:
                raise TransientError(
                    f"alert webhook at {self._where}: HTTP {response.status_code}")
            if response.status_code >= 300:
                raise PermanentError(
                    f"alert webhook at {self._where}: HTTP {response.status_code}")
        activity.logger.info("alert posted for %s (%s)", alert.workflow_id, alert.status)
        return True
