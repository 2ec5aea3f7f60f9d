"""The API's routes, roles, errors and audit rows, against a real worker, Temporal,
Postgres and HTTP server (interfaces.md, "HTTP API and dashboard")."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from pipeworks.db import Connection
from tests.example.upstream import ReadingsUpstream
from tests.web_server import (
    OPERATOR_KEY,
    VIEWER_KEY,
    ApiServer,
    api_server,
    audit_rows,
    is_problem,
)
from tests.worker import running_worker

READINGS = {"S1": [{"station": "S1", "hour": h, "value": 1.5 + h} for h in range(2)],
            "S2": [{"station": "S2", "hour": 1, "value": 7.0}]}
async def wait_for_requests(upstream: ReadingsUpstream, count: int = 1) -> None:
    for _ in range(400):
        if upstream.requests >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the run never asked its upstream")


async def test_healthz_needs_no_key(api: ApiServer) -> None:
    async with api.client() as client:
        response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/pipelines"), ("GET", "/api/v1/runs"), ("GET", "/api/v1/runs/x"),
    ("GET", "/api/v1/runs/x/events"), ("POST", "/api/v1/pipelines/example/runs"),
    ("POST", "/api/v1/runs/x/cancel")])
async def test_every_route_refuses_a_missing_or_unknown_key(api: ApiServer, method: str,
                                                            path: str) -> None:
    async with api.client() as client:
        missing = await client.request(method, path, json={})
    body = is_problem(missing, 401)
    assert "Bearer" in missing.headers["www-authenticate"]
    assert body["instance"] == path
    async with api.client("not-a-key-of-this-server") as client:
        unknown = await client.request(method, path, json={})
    assert "not one of PIPEWORKS_API_KEYS" in is_problem(unknown, 401)["detail"]


async def test_a_viewer_reads_but_may_not_start_or_cancel_and_each_try_is_audited(
        api: ApiServer, example_db: Connection) -> None:
    async with api.client(VIEWER_KEY) as client:
        assert (await client.get("/api/v1/runs")).status_code == 200
        start = await client.post("/api/v1/pipelines/example/runs", json={"stations": ["S1"]})
        cancel = await client.post("/api/v1/runs/example-sync-S1/cancel", json={})
    assert "operator role" in is_problem(start, 403)["detail"]
    is_problem(cancel, 403)
    rows = await audit_rows(example_db)
    assert [(r["key_name"], r["role"], r["action"], r["status"], r["outcome"]) for r in rows] == [
        ("ada", "viewer", "start", 403, "refused"), ("ada", "viewer", "cancel", 403, "refused")]
    assert rows[0]["pipeline"] == "example" and rows[1]["workflow_id"] == "example-sync-S1"
    assert json.loads(rows[0]["request"]) == {"stations": ["S1"]}


async def test_pipelines_lists_each_with_the_inputs_it_starts(api: ApiServer) -> None:
    async with api.client(VIEWER_KEY) as client:
        listed = (await client.get("/api/v1/pipelines")).json()
    assert [p["name"] for p in listed] == ["example"]
    schema = listed[0]["startable"]["ExampleSyncWorkflow"]
    assert "stations" in schema["required"]


async def test_start_is_201_then_200_attached_while_it_runs_and_both_are_audited(
        api: ApiServer, example_db: Connection, readings_upstream: ReadingsUpstream) -> None:
    readings_upstream.readings = READINGS
    readings_upstream.gate.clear()
    async with api.client(OPERATOR_KEY) as client:
        first = await client.post("/api/v1/pipelines/example/runs",
                                  json={"stations": ["S1", "S2"]})
        second = await client.post("/api/v1/pipelines/example/runs",
                                   json={"stations": ["S1", "S2"]})
        assert first.status_code == 201, first.text
        assert second.status_code == 200, second.text
        assert first.headers["location"] == "/api/v1/runs/example-sync-S1-S2"
        assert second.json()["run_id"] == first.json()["run_id"]
        assert second.json()["attached"] is True and first.json()["attached"] is False
        await wait_for_requests(readings_upstream)
        running = (await client.get("/api/v1/runs/example-sync-S1-S2")).json()
        assert running["status"] == "running" and running["pipeline"] == "example"
        readings_upstream.gate.set()
        final = await follow_to_end(client, "example-sync-S1-S2")
    assert final["status"] == "completed" and final["records"]["staged"] == 3
    async with api.client(VIEWER_KEY) as client:
        timeline = (await client.get("/api/v1/runs/example-sync-S1-S2/timeline")).json()
        is_problem(await client.get("/api/v1/runs/never-was/timeline"), 404)
    # From the run's history: its activities as spans, in order, each ended; its end.
    spans = timeline["spans"]
    assert len(spans) >= 4 and all(s["outcome"] == "completed" for s in spans)
    assert [s["start_s"] for s in spans] == sorted(s["start_s"] for s in spans)
    assert all(s["end_s"] >= s["start_s"] for s in spans)
    assert timeline["marks"][-1]["what"] == "run completed"
    rows = await audit_rows(example_db)
    assert [(r["key_name"], r["outcome"], r["status"]) for r in rows] == [
        ("ops", "started", 201), ("ops", "attached", 200)]
    assert {r["run_id"] for r in rows} == {first.json()["run_id"]}


async def follow_to_end(client: httpx.AsyncClient, workflow_id: str) -> dict[str, Any]:
    for _ in range(600):
        document = (await client.get(f"/api/v1/runs/{workflow_id}")).json()
        if document["status"] in ("completed", "completed_with_errors", "failed",
                                  "cancelled"):
            return dict(document)
        await asyncio.sleep(0.1)
    raise AssertionError(f"{workflow_id} did not end")


@pytest.mark.parametrize(("path", "body", "status", "words"), [
    ("/api/v1/pipelines/nope/runs", {"stations": ["S1"]}, 404, "no pipeline named 'nope'"),
    ("/api/v1/pipelines/example/runs", {"stations": "S1"}, 422, "stations"),
    ("/api/v1/pipelines/example/runs", {"stations": ["S1"], "extra": 1}, 422, "extra"),
    ("/api/v1/pipelines/example/runs?workflow=Other", {"stations": ["S1"]}, 422,
     "not one of example's"),
    ("/api/v1/pipelines/example/runs", ["S1"], 422, "body"),
])
async def test_a_bad_start_is_one_clear_problem_and_audited(
        api: ApiServer, example_db: Connection, path: str, body: Any, status: int,
        words: str) -> None:
    async with api.client(OPERATOR_KEY) as client:
        response = await client.post(path, json=body)
    assert words in is_problem(response, status)["detail"]
    rows = await audit_rows(example_db)
    assert [(r["key_name"], r["outcome"], r["status"]) for r in rows] == [
        ("ops", "refused", status)]
    assert await example_db.fetchval("SELECT count(*) FROM pipeline.runs") == 0


async def test_cancel_stops_the_run_and_an_ended_or_unknown_run_is_a_problem(
        api: ApiServer, example_db: Connection, readings_upstream: ReadingsUpstream) -> None:
    readings_upstream.readings = READINGS
    readings_upstream.gate.clear()
    async with api.client(OPERATOR_KEY) as client:
        started = await client.post("/api/v1/pipelines/example/runs", json={"stations": ["S1"]})
        await wait_for_requests(readings_upstream)
        cancelled = await client.post("/api/v1/runs/example-sync-S1/cancel",
                                      json={"reason": "test says stop"})
        readings_upstream.gate.set()
        assert cancelled.status_code == 202, cancelled.text
        assert cancelled.json()["run_id"] == started.json()["run_id"]
        final = await follow_to_end(client, "example-sync-S1")
        assert final["status"] == "cancelled" and final["rolled_back"] is True
        again = await client.post("/api/v1/runs/example-sync-S1/cancel", json={})
        unknown = await client.post("/api/v1/runs/no-such-run/cancel", json={})
    assert "ended" in is_problem(again, 409)["detail"]
    is_problem(unknown, 404)
    rows = await audit_rows(example_db)
    assert [(r["action"], r["outcome"], r["status"]) for r in rows] == [
        ("start", "started", 201), ("cancel", "cancel_sent", 202), ("cancel", "refused", 409),
        ("cancel", "refused", 404)]
    assert json.loads(rows[1]["request"]) == {"reason": "test says stop"}
    assert rows[1]["run_id"] == started.json()["run_id"] and rows[1]["pipeline"] == "example"


async def seed_runs(db: Connection, count: int) -> list[str]:
    """`count` finished runs, one a second apart (two share a moment: the cursor's tie)."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    ids = []
    for i in range(count):
        started = base + timedelta(seconds=i if i != 3 else 2)
        pipeline, status = ("example", "completed") if i % 3 else ("other", "failed")
        await db.execute(
            "INSERT INTO pipeline.runs (workflow_id, run_id, pipeline, params, status,"
            " started_at, finished_at, stats) VALUES ($1, $2, $3, '{}', $4, $5, $5,"
            " '{\"percent\": 100.0, \"message\": \"done\"}')", f"wf-{i}", f"run-{i:03d}",
            pipeline, status, started)
        ids.append(f"run-{i:03d}")
    return ids


async def test_runs_are_newest_first_by_cursor_with_nothing_lost_or_repeated(
        api: ApiServer, example_db: Connection) -> None:
    await seed_runs(example_db, 23)
    expected = [r["run_id"] for r in await example_db.fetch(
        "SELECT run_id FROM pipeline.runs ORDER BY started_at DESC, run_id DESC")]
    seen: list[str] = []
    cursor = None
    async with api.client(VIEWER_KEY) as client:
        while True:
            params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/api/v1/runs", params=params)).json()
            seen.extend(item["run_id"] for item in page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == expected and len(seen) == 23
        filtered = (await client.get("/api/v1/runs", params={
            "pipeline": "example", "status": "completed", "limit": 500})).json()
        assert {i["pipeline"] for i in filtered["items"]} == {"example"}
        assert len(filtered["items"]) == 15 and filtered["next_cursor"] is None
        assert filtered["items"][0]["percent"] == 100.0
        is_problem(await client.get("/api/v1/runs", params={"cursor": "garbage!"}), 400)
        is_problem(await client.get("/api/v1/runs", params={"status": "sleeping"}), 422)
        is_problem(await client.get("/api/v1/runs", params={"limit": 0}), 422)
        is_problem(await client.get("/api/v1/runs", params={"pipeline": "nope"}), 404)


async def test_a_run_unknown_to_temporal_is_404_and_one_it_forgot_comes_from_runs(
        api: ApiServer, example_db: Connection) -> None:
    await example_db.execute(
        "INSERT INTO pipeline.runs (workflow_id, run_id, pipeline, params, status, started_at,"
        " finished_at, stats) VALUES ('old-run', 'r-old', 'example', '{}', 'completed', now(),"
        " now(), $1)", {"status": "completed", "percent": 100.0})
    async with api.client(VIEWER_KEY) as client:
        is_problem(await client.get("/api/v1/runs/never-was"), 404)
        is_problem(await client.get("/api/v1/runs/never-was/events"), 404)
        old = await client.get("/api/v1/runs/old-run")
    assert old.status_code == 200 and old.json()["status"] == "completed"


async def read_events(client: httpx.AsyncClient, workflow_id: str,
                      events: list[tuple[str, Any]]) -> None:
    async with client.stream("GET", f"/api/v1/runs/{workflow_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = None
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name is not None:
                events.append((name, json.loads(line.split(":", 1)[1])))
                if name == "end":
                    return


async def test_events_deliver_a_live_run_to_its_end(
        api: ApiServer, readings_upstream: ReadingsUpstream) -> None:
    readings_upstream.readings = READINGS
    readings_upstream.gate.clear()
    events: list[tuple[str, Any]] = []
    async with api.client(OPERATOR_KEY) as client:
        await client.post("/api/v1/pipelines/example/runs", json={"stations": ["S1", "S2"],
                                                                   "concurrency": 1})
        await wait_for_requests(readings_upstream)
        # Three clients at once: each gets every change, from one watcher.
        readers = [asyncio.create_task(read_events(client, "example-sync-S1-S2", e))
                   for e in (events, [], [])]
        await asyncio.sleep(1.0)
        readings_upstream.gate.set()
        await asyncio.wait_for(asyncio.gather(*readers), 60)
    progress = [data for name, data in events if name == "progress"]
    assert events[-1][0] == "end"
    assert progress[0]["status"] == "running" and progress[-1]["status"] == "completed"
    percents = [p["percent"] for p in progress]
    assert percents == sorted(percents) and percents[-1] == 100.0
    assert len(progress) >= 2  # running (held), then done
    assert len({json.dumps(p, sort_keys=True) for p in progress}) == len(progress)
    for reader in readers[1:]:
        assert reader.done() and reader.exception() is None


async def test_the_rate_limit_answers_429_with_retry_after(example_worker: Any) -> None:
    # Keys of its own: the limits' slots outlive the test (pipeline.rate_limits).
    keys = f"slow:viewer:{VIEWER_KEY},other:operator:{OPERATOR_KEY}"
    async with api_server(example_worker, api_keys=keys, api_rate_limit_per_second=0.5,
                          api_rate_limit_burst=3) as server, server.client(VIEWER_KEY) as client:
        statuses = [(await client.get("/api/v1/pipelines")) for _ in range(6)]
        async with server.client(OPERATOR_KEY) as operator:
            other = await operator.get("/api/v1/pipelines")
    codes = [r.status_code for r in statuses]
    assert codes[:3] == [200, 200, 200] and 429 in codes
    limited = next(r for r in statuses if r.status_code == 429)
    is_problem(limited, 429)
    assert 1 <= int(limited.headers["retry-after"]) <= 3
    assert other.status_code == 200  # the limit is per key


async def test_events_survive_a_worker_restart(
        example_settings: Any, example_db: Connection, readings_upstream: ReadingsUpstream,
        temporal_env: Any) -> None:
    readings_upstream.readings = READINGS
    readings_upstream.gate.clear()
    settings = example_settings.model_copy(update={"graceful_shutdown_seconds": 1})
    events: list[tuple[str, Any]] = []
    async with api_server(settings) as server, server.client(OPERATOR_KEY) as client:
        async with running_worker(settings, temporal_env.client):
            await client.post("/api/v1/pipelines/example/runs", json={"stations": ["S1"]})
            await wait_for_requests(readings_upstream)
            reader = asyncio.create_task(read_events(client, "example-sync-S1", events))
            await asyncio.sleep(1.0)
        # No worker now: the stream says so and stays open.
        for _ in range(300):
            if any(name == "unavailable" for name, _ in events):
                break
            await asyncio.sleep(0.1)
        assert not reader.done()
        readings_upstream.gate.set()
        async with running_worker(settings, temporal_env.client):
            await asyncio.wait_for(reader, 90)
    names = [name for name, _ in events]
    assert names[0] == "progress" and "unavailable" in names and names[-1] == "end"
    assert names.index("unavailable") < len(names) - 2
    assert events[-2][1]["status"] == "completed"


async def test_a_run_terminated_in_temporal_ends_its_stream_as_failed(
        api: ApiServer, readings_upstream: ReadingsUpstream, temporal_env: Any) -> None:
    readings_upstream.readings = READINGS
    readings_upstream.gate.clear()
    events: list[tuple[str, Any]] = []
    async with api.client(OPERATOR_KEY) as client:
        await client.post("/api/v1/pipelines/example/runs", json={"stations": ["S1"]})
        await wait_for_requests(readings_upstream)
        reader = asyncio.create_task(read_events(client, "example-sync-S1", events))
        await asyncio.sleep(0.5)
        # Ended by Temporal, not by the run: its last document still says running.
        await temporal_env.client.get_workflow_handle("example-sync-S1").terminate("test")
        await asyncio.wait_for(reader, 30)
        document = (await client.get("/api/v1/runs/example-sync-S1")).json()
        cancel = await client.post("/api/v1/runs/example-sync-S1/cancel", json={})
    readings_upstream.gate.set()
    assert document["status"] == "failed" and "terminated in Temporal" in document["message"]
    assert events[-1][0] == "end" and events[-2][1]["status"] == "failed"
    is_problem(cancel, 409)


async def test_a_body_too_large_is_refused_before_it_is_read(
        api: ApiServer, example_db: Connection) -> None:
    big = {"stations": ["S" * 70_000]}
    async with api.client() as anonymous:
        refused = await anonymous.post("/api/v1/pipelines/example/runs", json=big)
    is_problem(refused, 413)
    async with api.client(OPERATOR_KEY) as client:
        also = await client.post("/api/v1/pipelines/example/runs", json=big)
    is_problem(also, 413)
    # Nothing of it is kept (the request never reached a route).
    assert all(r["request"] is None for r in await audit_rows(example_db))
