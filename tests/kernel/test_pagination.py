"""Pagination strategies against a mock transport: the exact requests each one sends,
the pages and resume points it yields, and how it reacts to upstream trouble."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from pipeworks.errors import DataError, PermanentError, TransientError
from pipeworks.http import ErrorTally, HttpPermanentError, HttpTransientError, UpstreamClient
from pipeworks.pagination import (
    CursorEnvelope,
    FetchedPage,
    JsonArrayWindows,
    JsonRpc,
    Paginator,
    RpcError,
    RpcPermanentError,
    RpcRange,
    RpcTransientError,
    batch,
    call,
)
from tests.kernel.http_fakes import Recorder, Sleeps, json_reply, make_client, scripted


async def collect(paginator: Paginator, client: UpstreamClient, path: str,
                  params: dict[str, str] | None = None, resume: str | None = None,
                  tally: ErrorTally | None = None) -> list[FetchedPage]:
    return [page async for page in paginator.pages(client, path, params or {}, resume,
                                                   tally or ErrorTally())]


# --- cursor envelope ------------------------------------------------------------------


def envelope(items: Sequence[Any], next_cursor: str | None) -> httpx.Response:
    return json_reply({"items": list(items), "next_cursor": next_cursor})


async def test_cursor_envelope_walks_the_cursors_in_order() -> None:
    replies = [envelope([1, 2], "c1"), envelope([3, 4], "c2"), envelope([5], None)]
    recorder = scripted(*replies)
    pages = await collect(CursorEnvelope(page_size=2), make_client(recorder), "/v1/x/items",
                          {"updated_since": "2024-01-01T00:00:00+00:00"})
    assert recorder.targets == [
        "/v1/x/items?updated_since=2024-01-01T00%3A00%3A00%2B00%3A00&limit=2",
        "/v1/x/items?updated_since=2024-01-01T00%3A00%3A00%2B00%3A00&limit=2&cursor=c1",
        "/v1/x/items?updated_since=2024-01-01T00%3A00%3A00%2B00%3A00&limit=2&cursor=c2"]
    assert [(p.item_count, p.resume) for p in pages] == [(2, "c1"), (2, "c2"), (1, None)]
    assert [p.body for p in pages] == [r.content for r in replies]


async def test_cursor_envelope_resumes_mid_stream() -> None:
    recorder = scripted(envelope([5], "c3"), envelope([], None))
    pages = await collect(CursorEnvelope(page_size=2), make_client(recorder), "/v1/x",
                          resume="c2")
    assert recorder.targets == ["/v1/x?limit=2&cursor=c2", "/v1/x?limit=2&cursor=c3"]
    assert [(p.item_count, p.resume) for p in pages] == [(1, "c3"), (0, None)]


async def test_a_repeated_cursor_is_a_pagination_loop() -> None:
    recorder = scripted(envelope([1], "c1"), envelope([2], "c2"), envelope([3], "c1"))
    paginator = CursorEnvelope(page_size=1)
    tally = ErrorTally()
    yielded: list[FetchedPage] = []
    with pytest.raises(DataError, match="pagination loops"):
        async for page in paginator.pages(make_client(recorder), "/v1/x", {}, None, tally):
            yielded.append(page)
    # The page whose continuation loops is not handed out (not landed).
    assert [p.resume for p in yielded] == ["c1", "c2"]
    assert len(recorder.seen) == 3 and tally.counts["data"] == 1


async def test_a_cursor_pointing_at_itself_loops_even_right_after_resume() -> None:
    recorder = scripted(envelope([1], "c5"))
    with pytest.raises(DataError):
        await collect(CursorEnvelope(), make_client(recorder), "/v1/x", resume="c5")


async def test_a_resumed_attempt_sees_loops_into_cursors_handed_in() -> None:
    # Cursors landed by earlier attempts come from the landing layer.
    recorder = scripted(envelope([1], "c1"))
    with pytest.raises(DataError):
        await collect(CursorEnvelope(seen_cursors={"c1", "c2"}), make_client(recorder),
                      "/v1/x", resume="c3")
    # Without them, this attempt cannot know c1 was seen before.
    recorder = scripted(envelope([1], "c1"), envelope([], None))
    assert [p.resume for p in await collect(CursorEnvelope(), make_client(recorder), "/v1/x",
                                            resume="c3")] == ["c1", None]


async def test_cursor_envelope_malformed_pages_fail_as_data() -> None:
    recorder = scripted(*[json_reply([1, 2])] * 3)
    tally = ErrorTally()
    with pytest.raises(DataError, match="malformed response"):
        await collect(CursorEnvelope(sleep=Sleeps()), make_client(recorder), "/v1/x",
                      tally=tally)
    assert tally.counts == {"transient": 2, "permanent": 0, "data": 1, "system": 0}


# --- JSON arrays in time windows ------------------------------------------------------

T0 = datetime(2024, 3, 2, 15, 0, tzinfo=UTC)
NO_RESULTS = {"detail": "No results found."}


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+", "%2B")


def window_target(path: str, lower: datetime, upper: datetime, field: str = "date") -> str:
    """What goes on the wire: the contract's `date>=a&date<b`, `<`/`>` percent-encoded."""
    return f"{path}?session_key=9472&{field}%3E={iso(lower)}&{field}%3C{iso(upper)}"


def windows_seen(recorder: Recorder) -> list[tuple[float, float]]:
    """The windows requested, as minutes after T0."""
    out = []
    for seen in recorder.seen:
        parts = unquote(seen.query).split("&")
        lower = next(p for p in parts if p.startswith("date>="))[len("date>="):]
        upper = next(p for p in parts if p.startswith("date<"))[len("date<"):]
        out.append(tuple((datetime.fromisoformat(b) - T0) / minutes(1) for b in (lower, upper)))
    return out  # type: ignore[return-value]


def by_window(reply: Callable[[float], httpx.Response]) -> Recorder:
    """Answers by the requested window's length in minutes."""
    def handler(request: httpx.Request) -> httpx.Response:
        parts = unquote(request.url.query.decode()).split("&")
        lower = next(p for p in parts if p.startswith("date>="))[len("date>="):]
        upper = next(p for p in parts if p.startswith("date<"))[len("date<"):]
        length = datetime.fromisoformat(upper) - datetime.fromisoformat(lower)
        return reply(length / minutes(1))
    return Recorder(handler=handler)


def windows(**kwargs: Any) -> JsonArrayWindows:
    options: dict[str, Any] = {"field": "date", "start": T0, "end": T0 + minutes(10),
                               "window": minutes(5), "sleep": Sleeps()}
    options.update(kwargs)
    return JsonArrayWindows(**options)


async def test_without_windows_one_request_is_one_page() -> None:
    recorder = scripted(json_reply([{"driver_number": 1}, {"driver_number": 4}]))
    pages = await collect(JsonArrayWindows(), make_client(recorder), "/v1/drivers",
                          {"session_key": "9472"})
    assert recorder.targets == ["/v1/drivers?session_key=9472"]
    assert [(p.item_count, p.resume) for p in pages] == [(2, None)]
    assert pages[0].body == json.dumps([{"driver_number": 1}, {"driver_number": 4}]).encode()


async def test_operator_filters_in_params_are_kept() -> None:
    # Values are passed decoded: the strategy encodes `+` (once).
    recorder = scripted(json_reply([]))
    await collect(JsonArrayWindows(), make_client(recorder), "/v1/laps",
                  {"session_key": "9472", "lap_number<": "5", "date_start>=": T0.isoformat()})
    assert recorder.targets == [
        "/v1/laps?session_key=9472&lap_number%3C5&date_start%3E=2024-03-02T15:00:00%2B00:00"]


async def test_windows_are_pages_with_operator_queries() -> None:
    recorder = scripted(json_reply([{"a": 1}]), json_reply([{"a": 2}, {"a": 3}]))
    pages = await collect(windows(), make_client(recorder), "/v1/weather",
                          {"session_key": "9472"})
    assert recorder.targets == [
        "/v1/weather?session_key=9472&date%3E=2024-03-02T15:00:00%2B00:00"
        "&date%3C2024-03-02T15:05:00%2B00:00",
        window_target("/v1/weather", T0 + minutes(5), T0 + minutes(10))]
    assert [p.item_count for p in pages] == [1, 2]
    assert json.loads(pages[0].resume or "") == {"start": "2024-03-02T15:05:00+00:00",
                                                 "size_seconds": 300.0}
    assert pages[1].resume is None


async def test_the_last_window_is_clipped_at_the_end() -> None:
    recorder = scripted(json_reply([]), json_reply([]))
    await collect(windows(end=T0 + minutes(7)), make_client(recorder), "/v1/pit",
                  {"session_key": "9472"})
    assert windows_seen(recorder) == [(0, 5), (5, 7)]


async def test_an_open_end_is_one_lower_bound() -> None:
    recorder = scripted(json_reply([]))
    pages = await collect(windows(end=None), make_client(recorder), "/v1/position",
                          {"session_key": "9472"})
    assert recorder.targets == [
        "/v1/position?session_key=9472&date%3E=2024-03-02T15:00:00%2B00:00"]
    assert [p.resume for p in pages] == [None]


async def test_windows_resume_at_the_next_window_with_its_size() -> None:
    recorder = scripted(json_reply([]), json_reply([]))
    resume = json.dumps({"start": (T0 + minutes(6)).isoformat(), "size_seconds": 120})
    pages = await collect(windows(), make_client(recorder), "/v1/pit",
                          {"session_key": "9472"}, resume=resume)
    assert windows_seen(recorder) == [(6, 8), (8, 10)]
    assert [p.resume is None for p in pages] == [False, True]


async def test_empty_is_200_empty_array_or_404_no_results() -> None:
    recorder = scripted(json_reply([]), json_reply(NO_RESULTS, 404))
    tally = ErrorTally()
    pages = await collect(windows(), make_client(recorder), "/v1/overtakes",
                          {"session_key": "9472"}, tally=tally)
    assert [(p.body, p.item_count) for p in pages] == [(b"[]", 0), (b"[]", 0)]
    assert len(recorder.seen) == 2 and sum(tally.counts.values()) == 0


@pytest.mark.parametrize("reply", [
    json_reply({"detail": "Not Found"}, 404), httpx.Response(404),
    httpx.Response(404, text="<html>No results found.</html>")])
async def test_any_other_404_is_permanent(reply: httpx.Response) -> None:
    recorder = scripted(reply)
    with pytest.raises(HttpPermanentError, match=r"\(not found\)"):
        await collect(JsonArrayWindows(), make_client(recorder), "/v1/nope")
    assert len(recorder.seen) == 1


async def test_a_body_that_is_not_an_array_is_malformed_then_data() -> None:
    recorder = scripted(*[json_reply({"items": []})] * 3)
    with pytest.raises(DataError, match="not a JSON array"):
        await collect(JsonArrayWindows(sleep=Sleeps()), make_client(recorder), "/v1/x")


async def test_repeated_5xx_halve_the_window_until_it_succeeds() -> None:
    # Windows longer than a minute time out upstream (a too-large query).
    recorder = by_window(lambda length: httpx.Response(503) if length > 1 else json_reply([1]))
    tally = ErrorTally()
    pages = await collect(windows(end=T0 + minutes(4), window=minutes(4), halve_after=2),
                          make_client(recorder, max_attempts=5), "/v1/location",
                          {"session_key": "9472"}, tally=tally)
    assert windows_seen(recorder) == [(0, 4), (0, 4), (0, 2), (0, 2),
                                      (0, 1), (1, 2), (2, 3), (3, 4)]
    assert [p.item_count for p in pages] == [1, 1, 1, 1]
    # Narrowed windows keep their size; the resume point carries it.
    assert [json.loads(p.resume)["size_seconds"] for p in pages[:-1] if p.resume] == [60.0] * 3
    assert pages[-1].resume is None
    assert tally.counts["transient"] == 4


async def test_timeouts_count_like_5xx() -> None:
    def reply(length: float) -> httpx.Response:
        if length > 2:
            raise httpx.ReadTimeout("aborted")
        return json_reply([])
    recorder = by_window(reply)
    await collect(windows(end=T0 + minutes(4), window=minutes(4), halve_after=1),
                  make_client(recorder), "/v1/car_data", {"session_key": "9472"})
    assert windows_seen(recorder) == [(0, 4), (0, 2), (2, 4)]


async def test_422_halves_at_once_then_is_permanent_for_that_window() -> None:
    recorder = by_window(lambda length: json_reply({"detail": "too broad"}, 422)
                         if length > 2 else json_reply([]))
    pages = await collect(windows(end=T0 + minutes(4), window=minutes(4)),
                          make_client(recorder), "/v1/location", {"session_key": "9472"})
    assert windows_seen(recorder) == [(0, 4), (0, 2), (2, 4)]
    assert len(pages) == 2
    # A refusal that narrowing does not cure is permanent after `max_refusals` halvings.
    recorder = by_window(lambda _length: json_reply({"detail": "no session"}, 422))
    with pytest.raises(PermanentError, match="HTTP 422"):
        await collect(windows(end=T0 + minutes(4), window=minutes(4)),
                      make_client(recorder), "/v1/location", {"session_key": "9472"})
    assert windows_seen(recorder) == [(0, 4), (0, 2)]


async def test_at_the_minimum_window_the_error_propagates() -> None:
    recorder = by_window(lambda _length: httpx.Response(500, text="<html>trace</html>"))
    tally = ErrorTally()
    with pytest.raises(HttpTransientError):
        await collect(windows(end=T0 + minutes(2), window=minutes(2), halve_after=2,
                              min_window=timedelta(seconds=45)),
                      make_client(recorder, max_attempts=3), "/v1/x", {"session_key": "9472"},
                      tally=tally)
    # 2 attempts at 2 min, then 1 min cannot halve below 45 s: the client's budget (3).
    assert windows_seen(recorder) == [(0, 2)] * 2 + [(0, 1)] * 3
    assert tally.counts["transient"] == 5


async def test_a_429_never_narrows_the_window() -> None:
    recorder = by_window(lambda _length: httpx.Response(429, headers={"Retry-After": "1"}))
    with pytest.raises(TransientError):
        await collect(windows(), make_client(recorder), "/v1/x", {"session_key": "9472"})
    assert windows_seen(recorder) == [(0, 5), (0, 5)]


def test_windows_need_a_start() -> None:
    with pytest.raises(ValueError, match="start"):
        JsonArrayWindows(field="date")


# --- JSON-RPC ---------------------------------------------------------------------------

USER, PASSWORD = "__cookie__", "hex-s3cret"


def rpc_node(methods: dict[str, Callable[..., Any]], *, reverse: bool = False,
             legacy_status: bool = False) -> Recorder:
    """A JSON-RPC server: `methods` return a result or an {"code", "message"} error."""
    def answer(request: dict[str, Any]) -> dict[str, Any]:
        outcome = methods[request["method"]](*request["params"])
        if isinstance(outcome, dict) and "code" in outcome:
            return {"result": None, "error": outcome, "id": request["id"]}
        return {"result": outcome, "error": None, "id": request["id"]}

    def handler(request: httpx.Request) -> httpx.Response:
        payload = json.loads(request.content)
        if isinstance(payload, list):
            replies = [answer(r) for r in payload]
            return json_reply(replies[::-1] if reverse else replies)
        reply = answer(payload)
        status = 500 if legacy_status and reply["error"] else 200
        return json_reply(reply, status)
    return Recorder(handler=handler)


def rpc_client(recorder: Recorder, **kwargs: Any) -> UpstreamClient:
    return make_client(recorder, basic_auth=(USER, PASSWORD), **kwargs)


def err(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}


async def test_call_posts_a_json_rpc_request_and_returns_the_result() -> None:
    recorder = rpc_node({"getblockcount": lambda: 840000})
    tally = ErrorTally()
    assert await call(rpc_client(recorder), "getblockcount", tally=tally) == 840000
    [seen] = recorder.seen
    assert (seen.method, seen.target) == ("POST", "/")
    assert seen.json == {"jsonrpc": "2.0", "id": 1, "method": "getblockcount", "params": []}
    assert seen.headers["Authorization"] == "Basic " + base64.b64encode(
        f"{USER}:{PASSWORD}".encode()).decode()
    assert seen.headers["Content-Type"] == "application/json"


async def test_results_keep_decimals_exact() -> None:
    recorder = scripted(httpx.Response(
        200, content=b'{"result": {"total_amount": 19687500.00000001}, "error": null, "id": 1}'))
    result = await call(rpc_client(recorder), "m", tally=ErrorTally(),
                        rpc=JsonRpc(version="1.0"))
    assert result == {"total_amount": Decimal("19687500.00000001")}
    assert recorder.seen[0].json["jsonrpc"] == "1.0"


async def test_batch_results_come_back_in_call_order_matched_by_id() -> None:
    recorder = rpc_node({"getblockhash": lambda h: f"hash-{h}"}, reverse=True)
    calls = [("getblockhash", [h]) for h in (7, 8, 9)]
    assert await batch(rpc_client(recorder), calls, tally=ErrorTally()) == [
        "hash-7", "hash-8", "hash-9"]
    [seen] = recorder.seen
    assert seen.json == [{"jsonrpc": "2.0", "id": i, "method": "getblockhash", "params": [h]}
                         for i, h in enumerate((7, 8, 9))]


async def test_a_batch_reply_that_does_not_match_is_data() -> None:
    recorder = Recorder(handler=lambda _r: json_reply(
        [{"result": 1, "error": None, "id": 0}, {"result": 2, "error": None, "id": 0}]))
    tally = ErrorTally()
    with pytest.raises(DataError, match="repeated id"):
        await batch(rpc_client(recorder), [("m", []), ("m", [])], tally=tally,
                    rpc=JsonRpc(sleep=Sleeps()))
    assert len(recorder.seen) == 3 and tally.counts["data"] == 1


@pytest.mark.parametrize(("code", "message", "category"), [
    (-32601, "Method not found", RpcPermanentError),
    (-3, "Expected type number", RpcPermanentError),
    (-8, "Block height out of range", RpcPermanentError),
    (-5, "Block not found", RpcPermanentError),
    (-1, "getblockstats hash_or_height ( stats )\n" + "help " * 200, RpcPermanentError),
])
@pytest.mark.parametrize("legacy_status", [False, True])
async def test_rpc_error_codes_map_to_categories(
        code: int, message: str, category: type[RpcError], legacy_status: bool) -> None:
    # Legacy servers answer with HTTP 500: the reply decides, not the status.
    recorder = rpc_node({"m": lambda: err(code, message)}, legacy_status=legacy_status)
    tally = ErrorTally()
    with pytest.raises(category) as raised:
        await call(rpc_client(recorder), "m", tally=tally)
    assert (raised.value.code, raised.value.rpc_message) == (code, message)
    assert len(raised.value.message) < 360  # a help text is clipped in the message
    assert len(recorder.seen) == 1 and sum(tally.counts.values()) == 0


async def test_legacy_method_not_found_is_a_404_with_an_rpc_body() -> None:
    recorder = scripted(json_reply(
        {"result": None, "error": err(-32601, "Method not found"), "id": 1}, 404))
    with pytest.raises(RpcPermanentError) as raised:
        await call(rpc_client(recorder), "nope", tally=ErrorTally())
    assert raised.value.code == -32601


async def test_warming_up_is_transient_and_retried() -> None:
    answers = iter([err(-28, "Loading block index…"), err(-28, "Verifying blocks…"), 5])
    recorder = rpc_node({"getblockcount": lambda: next(answers)})
    tally = ErrorTally()
    assert await call(rpc_client(recorder), "getblockcount", tally=tally,
                      rpc=JsonRpc(sleep=Sleeps())) == 5
    assert len(recorder.seen) == 3 and tally.counts["transient"] == 2
    recorder = rpc_node({"getblockcount": lambda: err(-28, "Loading wallet…")})
    with pytest.raises(RpcTransientError):
        await call(rpc_client(recorder), "getblockcount", tally=ErrorTally(),
                   rpc=JsonRpc(sleep=Sleeps()))


async def test_transient_messages_are_configurable() -> None:
    recorder = rpc_node({"m": lambda: err(-32603, "index is still syncing. Current height: 9")})
    with pytest.raises(RpcTransientError):
        await call(rpc_client(recorder), "m", tally=ErrorTally(),
                   rpc=JsonRpc(transient_messages=("still syncing",), sleep=Sleeps()))
    with pytest.raises(RpcPermanentError):
        await call(rpc_client(recorder), "m", tally=ErrorTally())


async def test_work_queue_full_and_html_500_are_transient() -> None:
    recorder = scripted(httpx.Response(503, text="Work queue depth exceeded"),
                        httpx.Response(500, text="<html><body>shutting down</body></html>"),
                        json_reply({"result": 3, "error": None, "id": 1}))
    tally = ErrorTally()
    assert await call(rpc_client(recorder), "getblockcount", tally=tally,
                      rpc=JsonRpc(sleep=Sleeps())) == 3
    assert tally.counts["transient"] == 2
    recorder = Recorder(handler=lambda _r: httpx.Response(503, text="Work queue depth exceeded"))
    with pytest.raises(HttpTransientError) as raised:
        await call(rpc_client(recorder), "m", tally=ErrorTally(), rpc=JsonRpc(sleep=Sleeps()))
    assert raised.value.status == 503 and len(recorder.seen) == 3


@pytest.mark.parametrize("status", [401, 403, 405])
async def test_auth_and_method_refusals_are_permanent(status: int) -> None:
    recorder = scripted(httpx.Response(status, headers={"WWW-Authenticate": "Basic"}))
    with pytest.raises(HttpPermanentError) as raised:
        await call(rpc_client(recorder), "m", tally=ErrorTally())
    assert raised.value.status == status and len(recorder.seen) == 1
    assert PASSWORD not in str(raised.value)


async def test_a_401_refreshes_credentials_once() -> None:
    good = "Basic " + base64.b64encode(f"{USER}:new-cookie".encode()).decode()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] != good:
            return httpx.Response(401)
        return json_reply({"result": "ok", "error": None, "id": 1})

    recorder = Recorder(handler=handler)
    client = rpc_client(recorder)
    refreshes: list[bool] = []

    def refresh() -> bool:
        refreshes.append(True)
        client.set_basic_auth(USER, "new-cookie")
        return True

    assert await call(client, "m", tally=ErrorTally(),
                      rpc=JsonRpc(refresh_credentials=refresh)) == "ok"
    assert len(refreshes) == 1 and len(recorder.seen) == 2
    # Still refused after the refresh: permanent, no second refresh.
    recorder = Recorder(handler=lambda _r: httpx.Response(401))
    refreshes.clear()
    client = rpc_client(recorder)
    with pytest.raises(HttpPermanentError):
        await call(client, "m", tally=ErrorTally(), rpc=JsonRpc(refresh_credentials=refresh))
    assert len(refreshes) == 1 and len(recorder.seen) == 2


async def test_batch_element_errors_raise_or_are_kept() -> None:
    def stats(height: int) -> Any:
        return err(-1, "Block not available (pruned data)") if height == 8 else {"h": height}

    recorder = rpc_node({"getblockstats": stats})
    calls = [("getblockstats", [h]) for h in (7, 8, 9)]
    with pytest.raises(RpcPermanentError, match="pruned"):
        await batch(rpc_client(recorder), calls, tally=ErrorTally())
    results = await batch(rpc_client(recorder), calls, tally=ErrorTally(),
                          keep_errors=lambda e: e.code == -1)
    assert results[0] == {"h": 7} and results[2] == {"h": 9}
    assert isinstance(results[1], RpcPermanentError) and results[1].code == -1


async def test_a_transient_element_error_retries_the_whole_batch() -> None:
    answers = iter([err(-28, "Loading"), "a", "b"])
    recorder = rpc_node({"m": lambda: next(answers)})
    assert await batch(rpc_client(recorder), [("m", [])], tally=ErrorTally(),
                       rpc=JsonRpc(sleep=Sleeps())) == ["a"]
    assert len(recorder.seen) == 2


async def test_rpc_range_pages_are_batches_and_resume_at_the_next_integer() -> None:
    recorder = rpc_node({"getblockhash": lambda h: f"hash-{h}"}, reverse=True)
    paginator = RpcRange("getblockhash", lambda h: [h], start=10, stop=15, batch_size=2)
    pages = await collect(paginator, rpc_client(recorder), "/")
    assert [[r["id"] for r in s.json] for s in recorder.seen] == [[10, 11], [12, 13], [14]]
    assert [[r["params"] for r in s.json] for s in recorder.seen] == [
        [[10], [11]], [[12], [13]], [[14]]]
    assert [(p.item_count, p.resume) for p in pages] == [(2, "12"), (2, "14"), (1, None)]
    # The body is the raw reply array as received (here in reverse order).
    assert [r["id"] for r in json.loads(pages[0].body)] == [11, 10]

    recorder = rpc_node({"getblockhash": lambda h: f"hash-{h}"})
    pages = await collect(paginator, rpc_client(recorder), "/", resume="14")
    assert [[r["id"] for r in s.json] for s in recorder.seen] == [[14]]
    assert [p.resume for p in pages] == [None]


async def test_rpc_range_lands_kept_errors_and_fails_on_others() -> None:
    def stats(height: int) -> Any:
        return err(-1, "Block not available (pruned data)") if height == 1 else {"h": height}

    recorder = rpc_node({"getblockstats": stats})
    kept = RpcRange("getblockstats", lambda h: [h], 0, 3, keep_errors=lambda e: e.code == -1)
    [page] = await collect(kept, rpc_client(recorder), "/")
    assert [r["error"] for r in json.loads(page.body)] == [
        None, err(-1, "Block not available (pruned data)"), None]
    with pytest.raises(RpcPermanentError):
        await collect(RpcRange("getblockstats", lambda h: [h], 0, 3), rpc_client(recorder), "/")


async def test_an_empty_range_has_no_pages() -> None:
    recorder = Recorder()
    assert await collect(RpcRange("m", lambda h: [h], 5, 5), rpc_client(recorder), "/") == []
    assert recorder.seen == []
