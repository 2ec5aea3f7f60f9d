"""The kernel's HTTP client against a mock transport: methods, bodies, auth, the error
categories and in-process retries, and the operator query strings."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from pipeworks.errors import (
    DataError,
    PermanentError,
    PipelineError,
    TransientError,
    as_application_error,
)
from pipeworks.http import (
    ErrorTally,
    HttpPermanentError,
    HttpTransientError,
    Page,
    QueryValue,
    http_status,
    query_string,
)
from tests.kernel.http_fakes import Recorder, Sleeps, json_reply, make_client, scripted

TOKEN = "tok-s3cret-bearer"
USER, PASSWORD = "__cookie__", "c00kie-s3cret-hex"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
PAGE: dict[str, Any] = {"items": [{"id": "a"}, {"id": "b"}], "next_cursor": "c2"}


def body_of(response: httpx.Response) -> Any:
    return json.loads(response.content)


def status_of(response: httpx.Response) -> tuple[int, Any]:
    return response.status_code, body_of(response)


# --- the existing GET API ------------------------------------------------------------


async def test_get_page_sends_params_and_bearer_token_and_parses_the_page() -> None:
    recorder = scripted(json_reply(PAGE))
    client = make_client(recorder, token=TOKEN)
    tally = ErrorTally()
    page = await client.get_page("/v1/things/X/items", {"limit": 2, "cursor": "c1"}, tally)
    assert page == Page(PAGE["items"], "c2", json.dumps(PAGE).encode())
    [seen] = recorder.seen
    assert (seen.method, seen.target) == ("GET", "/v1/things/X/items?limit=2&cursor=c1")
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["Accept"] == "application/json"
    assert seen.body == b""
    assert sum(tally.counts.values()) == 0
    await client.aclose()


async def test_get_object_parses_an_object_and_sends_no_auth_without_credentials() -> None:
    recorder = scripted(json_reply({"id": "X", "name": "n"}))
    client = make_client(recorder)
    assert await client.get_object("/v1/things/X", ErrorTally()) == {"id": "X", "name": "n"}
    assert recorder.targets == ["/v1/things/X"]
    assert "Authorization" not in recorder.seen[0].headers
    await client.aclose()


async def test_a_page_without_items_is_malformed_then_a_data_failure() -> None:
    recorder = scripted(*[json_reply({"rows": []})] * 3)
    sleeps = Sleeps()
    client = make_client(recorder, max_attempts=5)
    tally = ErrorTally()
    with pytest.raises(DataError, match=r"GET /v1/x: malformed response 3 times"):
        await client.get_page("/v1/x", {}, tally, sleeps)
    assert len(recorder.seen) == 3 and len(sleeps) == 2
    assert tally.counts["transient"] == 2 and tally.counts["data"] == 1


# --- POST, JSON bodies, auth ---------------------------------------------------------


async def test_post_sends_a_json_body_with_basic_auth() -> None:
    recorder = scripted(json_reply({"ok": True}))
    client = make_client(recorder, basic_auth=(USER, PASSWORD))
    result = await client.request("POST", "/", body_of, ErrorTally(),
                                  json_body={"method": "m", "params": [1, "x"]})
    assert result == {"ok": True}
    [seen] = recorder.seen
    assert (seen.method, seen.target) == ("POST", "/")
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["Authorization"] == BASIC
    assert seen.json == {"method": "m", "params": [1, "x"]}
    await client.aclose()


async def test_set_basic_auth_replaces_the_credentials_of_later_requests() -> None:
    recorder = scripted(json_reply({}), json_reply({}))
    client = make_client(recorder, basic_auth=(USER, PASSWORD))
    await client.request("POST", "/", body_of, ErrorTally(), json_body=[])
    client.set_basic_auth(USER, "rotated")
    await client.request("POST", "/", body_of, ErrorTally(), json_body=[])
    assert [s.headers["Authorization"] for s in recorder.seen] == [
        BASIC, "Basic " + base64.b64encode(f"{USER}:rotated".encode()).decode()]


def test_bearer_and_basic_together_are_refused_without_echoing_them() -> None:
    with pytest.raises(ValueError, match="not both") as raised:
        make_client(Recorder(), token=TOKEN, basic_auth=(USER, PASSWORD))
    assert TOKEN not in str(raised.value) and PASSWORD not in str(raised.value)
    with pytest.raises(ValueError, match="must not contain"):
        make_client(Recorder(), basic_auth=("a:b", PASSWORD))
    with pytest.raises(ValueError, match="not configured with basic auth"):
        make_client(Recorder(), token=TOKEN).set_basic_auth(USER, PASSWORD)


@pytest.mark.parametrize("reply", [
    httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="jsonrpc"'}),
    httpx.Response(403, text=f"denied {USER}"),
    httpx.Response(500, text="<html>trace</html>"),
    httpx.ConnectError(f"refused: http://{USER}:{PASSWORD}@upstream.test/"),
    httpx.ReadTimeout(f"timeout on http://{USER}:{PASSWORD}@upstream.test/?t={TOKEN}"),
])
@pytest.mark.parametrize("auth", [{"token": TOKEN}, {"basic_auth": (USER, PASSWORD)}])
async def test_credentials_never_appear_in_error_text(
        reply: httpx.Response | Exception, auth: dict[str, Any]) -> None:
    client = make_client(Recorder(handler=lambda _request: reply), max_attempts=2, **auth)
    with pytest.raises(PipelineError) as raised:
        await client.request("POST", "/", body_of, ErrorTally(), json_body={"id": 1},
                             sleep=Sleeps())
    err = raised.value
    texts = [str(err), err.message, str(as_application_error(err).message), repr(err)]
    secrets = [TOKEN, PASSWORD, BASIC.split()[1]]
    assert not [s for s in secrets for t in texts if s in t]
    # No chained httpx exception (its text can quote the URL) travels with it.
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)


# --- error categories and retries ----------------------------------------------------


async def test_429_waits_retry_after_then_succeeds() -> None:
    recorder = scripted(httpx.Response(429, headers={"Retry-After": "7"}), json_reply(PAGE))
    sleeps = Sleeps()
    client = make_client(recorder)
    tally = ErrorTally()
    page = await client.get_page("/v1/x", {"limit": 2}, tally, sleeps)
    assert page.next_cursor == "c2"
    assert sleeps == [7.0] and len(recorder.seen) == 2
    assert tally.counts["transient"] == 1


async def test_429_beyond_the_in_process_budget_goes_up_with_its_delay() -> None:
    # Without Retry-After the client's default applies; 60 s is more than an activity
    # waits in-process, so the error carries it for Temporal's retry.
    recorder = scripted(httpx.Response(429, text="Rate exceeded"))
    sleeps = Sleeps()
    client = make_client(recorder, retry_after_default_seconds=60.0)
    with pytest.raises(HttpTransientError) as raised:
        await client.request("GET", "/v1/x", body_of, ErrorTally(), sleep=sleeps)
    assert raised.value.retry_after == 60.0 and raised.value.status == 429
    assert sleeps == [] and len(recorder.seen) == 1


async def test_5xx_is_retried_then_transient() -> None:
    recorder = scripted(*[httpx.Response(503, text="Work queue depth exceeded")] * 3)
    sleeps = Sleeps()
    client = make_client(recorder, max_attempts=3)
    tally = ErrorTally()
    with pytest.raises(HttpTransientError, match=r"^GET /v1/x: HTTP 503$") as raised:
        await client.get_page("/v1/x", {}, tally, sleeps)
    assert http_status(raised.value) == 503
    assert len(recorder.seen) == 3 and len(sleeps) == 2
    assert tally.counts["transient"] == 3


async def test_5xx_408_and_timeouts_then_success() -> None:
    recorder = scripted(httpx.Response(502), httpx.Response(408),
                        httpx.ReadTimeout("slow"), json_reply({"id": "X"}))
    client = make_client(recorder, max_attempts=4)
    tally = ErrorTally()
    result = await client.request("POST", "/rpc", body_of, tally, json_body={},
                                  sleep=Sleeps())
    assert result == {"id": "X"}
    assert tally.counts["transient"] == 3
    assert [s.method for s in recorder.seen] == ["POST"] * 4


async def test_max_attempts_per_call_overrides_the_clients_budget() -> None:
    recorder = scripted(*[httpx.Response(500)] * 5)
    client = make_client(recorder, max_attempts=5)
    with pytest.raises(TransientError):
        await client.request("GET", "/v1/x", body_of, ErrorTally(), max_attempts=2,
                             sleep=Sleeps())
    assert len(recorder.seen) == 2


async def test_404_is_permanent_and_not_retried() -> None:
    recorder = scripted(json_reply({"error": "not_found", "detail": "no such id"}, 404))
    client = make_client(recorder)
    tally = ErrorTally()
    with pytest.raises(HttpPermanentError,
                       match=r"^GET /v1/x: not_found \(no such id\) \(not found\)$") as raised:
        await client.get_object("/v1/x", tally)
    assert raised.value.status == 404 and len(recorder.seen) == 1
    # Permanent failures are counted by whoever reports them, not by the client.
    assert sum(tally.counts.values()) == 0


@pytest.mark.parametrize("status", [400, 401, 403, 405, 422])
async def test_other_4xx_are_permanent(status: int) -> None:
    recorder = scripted(httpx.Response(status))
    client = make_client(recorder)
    with pytest.raises(PermanentError, match=rf"^POST /: HTTP {status}$") as raised:
        await client.request("POST", "/", body_of, ErrorTally(), json_body=[])
    assert http_status(raised.value) == status and len(recorder.seen) == 1


async def test_an_accepted_error_response_goes_to_the_parser() -> None:
    # A 404 that means "empty": the caller recognises it and gets status and body.
    no_results = {"detail": "No results found."}
    recorder = scripted(json_reply(no_results, 404), json_reply({"detail": "Not Found"}, 404))
    client = make_client(recorder)

    def means_empty(response: httpx.Response) -> bool:
        return response.status_code == 404 and body_of(response) == no_results

    got = await client.request("GET", "/v1/x", status_of, ErrorTally(), accept=means_empty)
    assert got == (404, no_results)
    with pytest.raises(HttpPermanentError, match=r"\(not found\)"):
        await client.request("GET", "/v1/x", status_of, ErrorTally(), accept=means_empty)


async def test_a_parser_classifies_the_answer_itself() -> None:
    recorder = scripted(json_reply({"warming": True}), json_reply({"warming": False}),
                        json_reply({"fatal": True}))
    client = make_client(recorder)

    def parse(response: httpx.Response) -> Any:
        body = body_of(response)
        if body.get("warming"):
            raise TransientError("warming up")
        if body.get("fatal"):
            raise DataError("nonsense")
        return body

    tally = ErrorTally()
    assert await client.request("GET", "/", parse, tally, sleep=Sleeps()) == {
        "warming": False}
    assert tally.counts["transient"] == 1
    with pytest.raises(DataError):
        await client.request("GET", "/", parse, tally, sleep=Sleeps())
    assert tally.counts["data"] == 1 and len(recorder.seen) == 3


class FakeMetrics:
    def __init__(self) -> None:
        self.requests: list[int | None] = []
        self.retries: list[str] = []

    def upstream_request(self, stage: str, status: int | None, seconds: float) -> None:
        self.requests.append(status)

    def retry(self, stage: str, category: str) -> None:
        self.retries.append(category)


async def test_metrics_count_every_attempt_and_every_retry() -> None:
    recorder = scripted(httpx.ConnectError("reset"), httpx.Response(503), json_reply([]))
    metrics = FakeMetrics()
    client = make_client(recorder, metrics=metrics)
    await client.request("POST", "/", body_of, ErrorTally(), json_body=[], sleep=Sleeps())
    assert metrics.requests == [None, 503, 200]
    assert metrics.retries == ["transient", "transient"]


# --- query strings with operators -----------------------------------------------------

T0 = datetime(2024, 3, 2, 15, 0, tzinfo=UTC)


def test_query_string_writes_operators_as_the_contract_shows() -> None:
    filters: dict[str, QueryValue] = {
        "session_key": 9472, "date>=": T0, "date<": T0 + timedelta(minutes=5)}
    assert query_string(filters) == (
        "session_key=9472&date>=2024-03-02T15:00:00%2B00:00"
        "&date<2024-03-02T15:05:00%2B00:00")
    assert query_string([("lap_number<", 5), ("lap_number>", 1), ("driver_number", 4),
                         ("driver_number=", 81), ("date<=", "2024-03-02T15:00:00+01:00"),
                         ("is_pit_out_lap", True)]) == (
        "lap_number<5&lap_number>1&driver_number=4&driver_number=81"
        "&date<=2024-03-02T15:00:00%2B01:00&is_pit_out_lap=true")


def test_query_string_encodes_what_would_split_or_change_a_filter() -> None:
    assert query_string({"name": "a b&c=d+e/é"}) == "name=a%20b%26c%3Dd%2Be%2F%C3%A9"
    offset = timezone(timedelta(hours=-5))
    assert query_string({"date>": datetime(2024, 3, 2, 10, 0, 0, 500000, tzinfo=offset)}) == (
        "date>2024-03-02T10:00:00.500000-05:00")
    with pytest.raises(ValueError, match="offset"):
        query_string({"date>=": datetime(2024, 3, 2)})  # naive: the point
    with pytest.raises(ValueError, match="not a date"):
        query_string({"date>=": date(2024, 3, 2)})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no field name"):
        query_string({">=": 1})


async def test_an_encoded_query_is_sent_as_it_is() -> None:
    recorder = scripted(json_reply([]))
    client = make_client(recorder)
    filters: dict[str, QueryValue] = {
        "session_key": 9472, "date>=": T0, "date<": T0 + timedelta(minutes=5)}
    query = query_string(filters)
    await client.request("GET", "/v1/laps", body_of, ErrorTally(), params=query)
    # httpx percent-encodes only `<` and `>`, which servers decode before splitting.
    sent = recorder.seen[0].target
    assert sent == ("/v1/laps?session_key=9472&date%3E=2024-03-02T15:00:00%2B00:00"
                    "&date%3C2024-03-02T15:05:00%2B00:00")
    assert sent.replace("%3E", ">").replace("%3C", "<") == f"/v1/laps?{query}"
