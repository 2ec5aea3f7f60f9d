"""Fault switches that put a failure at an exact point of a client's run: a path that
fails from its (N+1)-th request on, and a gate that holds requests after the N-th."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from devstack.sports import Dataset, FaultConfig, UpstreamServer


@pytest.fixture(scope="module")
def server() -> Iterator[UpstreamServer]:
    with UpstreamServer(Dataset.generate(seed=7)) as upstream:
        yield upstream


@pytest.fixture
def upstream(server: UpstreamServer) -> Iterator[UpstreamServer]:
    yield server
    server.faults.reset()
    server.stats.clear()


def wait_until_held(upstream: UpstreamServer, count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while upstream.faults.held < count:
        assert time.monotonic() < deadline, f"{upstream.faults.held} held, wanted {count}"
        time.sleep(0.01)


def test_path_pass_count_fails_exactly_from_the_next_page_on(upstream: UpstreamServer) -> None:
    path = "/v1/competitions/K1/games"
    upstream.faults.set(path_status={path: 404}, path_pass_count=2)
    with httpx.Client(base_url=upstream.url, timeout=5) as client:
        first = client.get(path, params={"limit": 10})
        second = client.get(path, params={"limit": 10, "cursor": first.json()["next_cursor"]})
        other = client.get("/v1/competitions/K2/games")  # does not match: not counted
        third = client.get(path, params={"limit": 10, "cursor": second.json()["next_cursor"]})
        again = client.get(path)
    assert [first.status_code, second.status_code, other.status_code] == [200, 200, 200]
    assert [third.status_code, again.status_code] == [404, 404]
    assert third.json()["error"] == "not_found"


def test_path_pass_count_with_an_outage_that_ends(upstream: UpstreamServer) -> None:
    upstream.faults.set(path_status={"/v1/associations/*": 503}, path_pass_count=1,
                        path_fail_count=2)
    with httpx.Client(base_url=upstream.url, timeout=5) as client:
        codes = [client.get("/v1/associations/A1").status_code for _ in range(5)]
    assert codes == [200, 503, 503, 200, 200]


def test_hold_after_holds_requests_until_the_config_changes(upstream: UpstreamServer) -> None:
    upstream.faults.set(hold_after=2)
    codes: list[int] = []

    def get() -> None:
        with httpx.Client(base_url=upstream.url, timeout=10) as client:
            codes.append(client.get("/v1/associations/A1").status_code)

    get()
    get()
    assert codes == [200, 200] and upstream.faults.held == 0
    waiting = [threading.Thread(target=get) for _ in range(2)]
    for thread in waiting:
        thread.start()
    wait_until_held(upstream, 2)
    assert codes == [200, 200]  # still waiting: nothing answered
    assert upstream.stats.total == 2  # a held request is logged when it is served
    with httpx.Client(base_url=upstream.url, timeout=5) as admin:  # admin is never held
        assert admin.get("/_admin/faults").json()["hold_after"] == 2
        assert admin.patch("/_admin/faults", json={"hold_after": None}).status_code == 200
    for thread in waiting:
        thread.join(timeout=5)
    assert codes == [200, 200, 200, 200]
    assert upstream.faults.held == 0
    assert [e["fault"] for e in upstream.stats.log()] == [None, None, "held", "held"]


def test_held_requests_are_cut_when_the_server_stops() -> None:
    server = UpstreamServer(Dataset.generate(seed=7), faults=FaultConfig(hold_after=0)).start()
    outcome: list[BaseException | int] = []

    def get() -> None:
        try:
            with httpx.Client(base_url=server.url, timeout=10) as client:
                outcome.append(client.get("/v1/associations/A1").status_code)
        except httpx.HTTPError as err:
            outcome.append(err)

    thread = threading.Thread(target=get)
    thread.start()
    try:
        wait_until_held(server, 1)
    finally:
        server.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.HTTPError), outcome
    deadline = time.monotonic() + 5
    while server.faults.held:  # the handler thread notices the stop within 50 ms
        assert time.monotonic() < deadline, "a held request outlived the server"
        time.sleep(0.01)
