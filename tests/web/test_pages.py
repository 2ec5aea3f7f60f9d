"""The dashboard's sessions, pages and cancel form over a real server: login by form
and by `?key=`, the cookie's flags, redirects, CSRF, roles, and no key in any log."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from pipeworks.db import Connection
from pipeworks.registry import installed
from pipeworks.settings import Settings
from starters.web.app import create_app
from tests.example.upstream import ReadingsUpstream
from tests.web.test_api import READINGS, follow_to_end, wait_for_requests
from tests.web_server import OPERATOR_KEY, VIEWER_KEY, ApiServer, audit_rows

CONTRACT_ROUTES = {
    ("get", "/healthz"), ("get", "/api/v1/pipelines"), ("get", "/api/v1/runs"),
    ("get", "/api/v1/runs/{workflow_id}"), ("get", "/api/v1/runs/{workflow_id}/events"),
    ("post", "/api/v1/pipelines/{pipeline}/runs"), ("post", "/api/v1/runs/{workflow_id}/cancel"),
    ("get", "/api/v1/f1/sessions/{session_key}"), ("get", "/api/v1/btc/findings")}


@contextlib.asynccontextmanager
async def logged_in(api: ApiServer, key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api.client(follow_redirects=False) as client:
        response = await client.get("/login", params={"key": key, "next": "/health"})
        assert response.status_code == 303 and response.headers["location"] == "/health"
        yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([0-9a-f]+)"', html)
    assert found
    return found.group(1)


def test_the_openapi_document_has_every_route_of_the_contract(kernel_settings: Settings
                                                               ) -> None:
    assert {"f1", "btc_reconcile"} <= {p.name for p in installed()}
    document = create_app(kernel_settings).openapi()
    routes = {(method, path) for path, item in document["paths"].items() for method in item}
    assert routes >= CONTRACT_ROUTES
    findings = document["paths"]["/api/v1/btc/findings"]["get"]["parameters"]
    assert {p["name"] for p in findings} >= {"category", "severity", "open", "from_height",
                                             "to_height", "cursor"}
    assert "ApiKey" in document["components"]["securitySchemes"]


async def test_pages_redirect_to_login_until_a_key_logs_in(api: ApiServer) -> None:
    async with api.client(follow_redirects=False) as client:
        for path in ("/", "/health", "/runs/x"):
            response = await client.get(path)
            assert response.status_code == 303
            assert response.headers["location"].startswith("/login?next=")
        bad = await client.get("/login", params={"key": "wrong-key-0123456789"})
        assert bad.status_code == 401 and "not valid" in bad.text
        assert "set-cookie" not in bad.headers
        good = await client.post("/login", data={"key": VIEWER_KEY, "next": "//evil.example/"})
        assert good.status_code == 303 and good.headers["location"] == "/"
        cookie = good.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        # The cookie holds a session token of the key, never the key itself.
        assert VIEWER_KEY.lower() not in cookie and "ada." in cookie
        runs = await client.get("/")
        assert runs.status_code == 200 and "ada" in runs.text
        out = await client.get("/logout")
        assert out.status_code == 303
        assert (await client.get("/")).status_code == 303


async def test_every_page_is_local_only_and_scripts_come_from_here(api: ApiServer) -> None:
    async with logged_in(api, VIEWER_KEY) as client:
        for path in ("/", "/health", "/api/docs", "/login"):
            response = await client.get(path)
            assert response.status_code == 200, path
            # Assets (scripts, styles, images) are ours; links to the Web UI may leave.
            assert not re.search(r'(src="|<link[^>]*href=")(https?:)?//', response.text), path
            assert "default-src 'self'" in response.headers["content-security-policy"]
        health = (await client.get("/health")).text
        assert "No worker polls" not in health  # the example worker polls the queue
        for asset in ("/static/app.css", "/static/runs.js", "/static/run.js",
                      "/static/vendor/chart.umd.min.js", "/static/vendor/swagger-ui-bundle.js"):
            assert (await client.get(asset)).status_code == 200, asset


async def test_the_cancel_form_needs_an_operator_and_its_csrf_token(
        api: ApiServer, example_db: Connection, readings_upstream: ReadingsUpstream) -> None:
    readings_upstream.readings = READINGS
    readings_upstream.gate.clear()
    async with api.client(OPERATOR_KEY) as bearer:
        await bearer.post("/api/v1/pipelines/example/runs", json={"stations": ["S1"]})
    await wait_for_requests(readings_upstream)
    async with logged_in(api, VIEWER_KEY) as viewer:
        page = await viewer.get("/runs/example-sync-S1")
        assert page.status_code == 200 and 'id="cancel-form"' not in page.text
        refused = await viewer.post("/runs/example-sync-S1/cancel", data={
            "csrf_token": csrf_of(page.text), "reason": "viewer tries"})
        assert refused.status_code == 403
    async with logged_in(api, OPERATOR_KEY) as operator:
        page = await operator.get("/runs/example-sync-S1")
        assert 'id="cancel-form"' in page.text and "Temporal Web UI" in page.text
        forged = await operator.post("/runs/example-sync-S1/cancel", data={"reason": "x"})
        assert forged.status_code == 403
        wrong = await operator.post("/runs/example-sync-S1/cancel",
                                    data={"csrf_token": "0" * 64, "reason": "x"})
        assert wrong.status_code == 403
        sent = await operator.post("/runs/example-sync-S1/cancel", data={
            "csrf_token": csrf_of(page.text), "reason": "from the page"})
        assert sent.status_code == 303
        assert sent.headers["location"] == "/runs/example-sync-S1?cancel=sent"
        # A cookie session's API call needs the token too (a bearer one does not).
        via_api = await operator.post("/api/v1/runs/example-sync-S1/cancel", json={})
        assert via_api.status_code == 403
    readings_upstream.gate.set()
    async with api.client(VIEWER_KEY) as client:
        final = await follow_to_end(client, "example-sync-S1")
    assert final["status"] == "cancelled"
    rows = await audit_rows(example_db)
    assert [(r["key_name"], r["action"], r["status"]) for r in rows] == [
        ("ops", "start", 201), ("ada", "cancel", 403), ("ops", "cancel", 403),
        ("ops", "cancel", 403), ("ops", "cancel", 303), ("ops", "cancel", 403)]
    assert rows[4]["outcome"] == "cancel_sent"
    assert "csrf_token" not in rows[4]["request"]


async def test_no_key_reaches_the_log(api: ApiServer, capfd: pytest.CaptureFixture[str],
                                      caplog: Any) -> None:
    async with logged_in(api, OPERATOR_KEY) as client:
        await client.get("/")
    async with api.client(VIEWER_KEY) as bearer:
        await bearer.get("/api/v1/runs")
    captured = capfd.readouterr()
    everything = captured.out + captured.err + caplog.text
    assert "/login" in everything  # the access log was captured...
    assert OPERATOR_KEY not in everything and VIEWER_KEY not in everything  # ...keys not


async def test_guessing_keys_at_the_login_form_is_rate_limited(api: ApiServer) -> None:
    """Last in this file: it spends the loopback address's login allowance."""
    async with api.client(follow_redirects=False) as client:
        answers = [await client.post("/login", data={"key": f"guess-{i:016d}"})
                   for i in range(30)]
    codes = [a.status_code for a in answers]
    assert codes[0] == 401 and 429 in codes
    assert int(next(a for a in answers if a.status_code == 429).headers["retry-after"]) >= 1
