"""The demo upstream against the sports API contract, over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.sports import Dataset, FaultConfig, UpstreamServer, load_preset
from devstack.sports.generate import REFERENCE_NOW
from devstack.sports.invalid import InvalidKind

REPO = Path(__file__).resolve().parents[3]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def shared() -> Iterator[UpstreamServer]:
    with UpstreamServer(Dataset.generate(seed=7)) as server:
        yield server


@pytest.fixture
def upstream(shared: UpstreamServer) -> Iterator[UpstreamServer]:
    """The module's server, restored to its pristine state after each test."""
    yield shared
    shared.dataset.reset()
    shared.faults.reset()
    shared.stats.clear()
    shared.token = None


@pytest.fixture
def client(upstream: UpstreamServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=upstream.url, timeout=5) as http:
        yield http


def walk(client: httpx.Client, path: str, **params: Any) -> list[Any]:
    items: list[Any] = []
    cursor: str | None = None
    for _ in range(10_000):
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        response = client.get(path, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next_cursor"}
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


# --------------------------------------------------------------------------- pagination


def test_pagination_walks_all_games_once_in_stable_order(
    upstream: UpstreamServer, client: httpx.Client
) -> None:
    expected = upstream.dataset.expected_games("K1")
    first = walk(client, "/v1/competitions/K1/games", limit=7)
    second = walk(client, "/v1/competitions/K1/games", limit=13)
    ids = [game["id"] for game in first]
    assert len(ids) == len(set(ids)) == 90
    assert first == second == expected


def test_every_list_endpoint_matches_expectations(
    upstream: UpstreamServer, client: httpx.Client
) -> None:
    dataset = upstream.dataset
    assert walk(
        client, "/v1/associations/A2/competitions", limit=3
    ) == dataset.expected_competitions("A2")
    assert walk(client, "/v1/competitions/K5/teams", limit=4) == dataset.expected_teams("K5")
    club_id = next(t["club_id"] for t in dataset.expected_teams("K2") if t["club_id"])
    fielded = walk(client, f"/v1/clubs/{club_id}/competitions", limit=1)
    assert fielded == dataset.expected_club_competitions(club_id)
    assert "K2" in {c["id"] for c in fielded}
    for competition in fielded:
        assert club_id in {t["club_id"] for t in dataset.expected_teams(competition["id"])}
    assert client.get("/v1/associations/A1").json() == {
        "id": "A1",
        "name": "Schweizerischer Fussballverband",
        "country": "Switzerland",
    }
    assert client.get(f"/v1/clubs/{club_id}").json()["association_id"] == "A1"


def test_limit_bounds(client: httpx.Client) -> None:
    path = "/v1/competitions/K1/games"
    assert len(client.get(path).json()["items"]) == 90  # default 100 > 90
    assert len(client.get(path, params={"limit": 1}).json()["items"]) == 1
    assert len(client.get(path, params={"limit": 500}).json()["items"]) == 90
    for bad in ("0", "501", "-1", "abc", "5.0", "", " 5"):
        response = client.get(path, params={"limit": bad})
        assert response.status_code == 400, bad
        assert response.json()["error"] == "bad_request"


def test_cursor_misuse_is_rejected(client: httpx.Client) -> None:
    page = client.get("/v1/competitions/K1/games", params={"limit": 5}).json()
    cursor = page["next_cursor"]
    assert client.get("/v1/competitions/K1/games", params={"cursor": cursor}).status_code == 200
    other_path = client.get("/v1/competitions/K2/games", params={"cursor": cursor})
    assert other_path.status_code == 400
    assert other_path.json()["error"] == "bad_cursor"
    other_filter = client.get(
        "/v1/competitions/K1/games",
        params={"cursor": cursor, "updated_since": "2025-01-01T00:00:00Z"},
    )
    assert other_filter.status_code == 400
    for garbage in ("not-a-cursor", "Zm9v", "!!!"):
        response = client.get("/v1/competitions/K1/games", params={"cursor": garbage})
        assert response.status_code == 400, garbage


def test_order_is_stable_while_items_change_between_pages(
    upstream: UpstreamServer, client: httpx.Client
) -> None:
    path = "/v1/competitions/K1/games"
    before = [g["id"] for g in upstream.dataset.expected_games("K1")]
    first = client.get(path, params={"limit": 30}).json()
    for game_id in before[:10]:
        upstream.dataset.remove_game(game_id)  # items already served: offsets would shift
    rest = walk(client, path, limit=30, cursor=first["next_cursor"])
    assert [g["id"] for g in first["items"] + rest] == before


def test_updated_since_filter(upstream: UpstreamServer, client: httpx.Client) -> None:
    since = "2025-03-01T00:00:00+01:00"
    served = walk(client, "/v1/competitions/K1/games", limit=10, updated_since=since)
    assert served == upstream.dataset.expected_games("K1", updated_since=since)
    threshold = datetime.fromisoformat(since)
    assert 0 < len(served) < 90
    assert all(datetime.fromisoformat(g["updated_at"]) >= threshold for g in served)
    # The same instant spelled in UTC is the same filter, so its cursors interchange.
    page = client.get(
        "/v1/competitions/K1/games", params={"updated_since": since, "limit": 2}
    ).json()
    same = client.get(
        "/v1/competitions/K1/games",
        params={"updated_since": "2025-02-28T23:00:00Z", "limit": 2, "cursor": page["next_cursor"]},
    )
    assert same.status_code == 200
    for bad in ("2025-03-01T00:00:00", "yesterday", "2025-13-01T00:00:00Z"):
        response = client.get("/v1/competitions/K1/games", params={"updated_since": bad})
        assert response.status_code == 400, bad
        assert response.json()["error"] == "bad_filter"


def test_unknown_ids_are_404_with_json_body(client: httpx.Client) -> None:
    for path in (
        "/v1/associations/A99",
        "/v1/associations/A99/competitions",
        "/v1/clubs/C9-9",
        "/v1/clubs/C9-9/competitions",
        "/v1/competitions/K99/teams",
        "/v1/competitions/K99/games",
        "/v1/nothing/here",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        body = response.json()
        assert body["error"] == "not_found" and isinstance(body["detail"], str)


def test_bearer_token() -> None:
    dataset = Dataset.generate(seed=1, associations=1)
    with (
        UpstreamServer(dataset, token="s3cret") as server,
        httpx.Client(base_url=server.url) as http,
    ):
        missing = http.get("/v1/associations/A1")
        assert missing.status_code == 401
        assert missing.json()["error"] == "unauthorized"
        assert missing.headers["WWW-Authenticate"] == "Bearer"
        wrong = http.get("/v1/associations/A1", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = http.get("/v1/associations/A1", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert http.get("/_admin/health").json() == {"status": "ok"}
        server.token = None  # switchable at run time
        assert http.get("/v1/associations/A1").status_code == 200


# --------------------------------------------------------------------------- faults


def test_rate_limit_carries_retry_after_and_is_logged(
    upstream: UpstreamServer, client: httpx.Client
) -> None:
    upstream.faults.set(rate_limit_rate=1.0, retry_after_s=7)
    response = client.get("/v1/competitions/K1/teams")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    stats = client.get("/_admin/stats").json()
    assert stats["by_route"] == {"/v1/competitions/{id}/teams": {"429": 1}}
    (entry,) = stats["log"]
    assert entry["status"] == 429 and entry["fault"] == "rate_limit" and entry["t"] >= 0


@pytest.mark.parametrize("mode", ["reset", "close"])
def test_dropped_connection_raises_in_httpx(
    upstream: UpstreamServer, client: httpx.Client, mode: str
) -> None:
    upstream.faults.set(drop_rate=1.0, drop_mode=mode)
    with pytest.raises(httpx.TransportError):
        client.get("/v1/associations/A1")
    upstream.faults.clear()
    assert client.get("/v1/associations/A1").status_code == 200
    assert upstream.stats.snapshot()["by_status"] == {"dropped": 1, "200": 1}


def _statuses(upstream: UpstreamServer, client: httpx.Client, seed: int) -> list[int | str]:
    upstream.faults.set(FaultConfig(seed=seed, error_rate=0.3, rate_limit_rate=0.2, drop_rate=0.1))
    outcomes: list[int | str] = []
    for _ in range(40):
        try:
            outcomes.append(client.get("/v1/associations/A1").status_code)
        except httpx.TransportError:
            outcomes.append("dropped")
    return outcomes


def test_fault_seed_reproduces(upstream: UpstreamServer, client: httpx.Client) -> None:
    first = _statuses(upstream, client, seed=11)
    again = _statuses(upstream, client, seed=11)
    other = _statuses(upstream, client, seed=12)
    assert first == again
    assert first != other
    assert {200, 429, "dropped"} <= set(first) and ({500, 503} & set(first))


def test_path_faults_fail_next_and_bad_bodies(
    upstream: UpstreamServer, client: httpx.Client
) -> None:
    upstream.faults.set(path_status={"/v1/competitions/K3/*": 404})
    assert client.get("/v1/competitions/K3/games").status_code == 404
    assert client.get("/v1/competitions/K2/games").status_code == 200

    upstream.faults.set(FaultConfig(fail_next=2, fail_next_status=502))
    assert [client.get("/v1/associations/A1").status_code for _ in range(3)] == [502, 502, 200]

    upstream.faults.set(FaultConfig(html_rate=1.0))
    html = client.get("/v1/associations/A1")
    assert html.status_code == 502 and html.headers["content-type"].startswith("text/html")

    upstream.faults.set(FaultConfig(malformed_rate=1.0))
    for _ in range(8):
        response = client.get("/v1/competitions/K1/teams")
        assert response.status_code == 200
        try:
            body = response.json()
        except json.JSONDecodeError:
            continue
        assert set(body) != {"items", "next_cursor"}


def test_latency_is_applied(upstream: UpstreamServer, client: httpx.Client) -> None:
    upstream.faults.set(latency_ms=60, jitter_ms=20)
    started = time.monotonic()
    assert client.get("/v1/associations/A1").status_code == 200
    assert time.monotonic() - started >= 0.06
    upstream.faults.clear()
    started = time.monotonic()
    client.get("/_admin/health")
    assert time.monotonic() - started < 0.06


def test_admin_endpoints(upstream: UpstreamServer, client: httpx.Client) -> None:
    put = client.put("/_admin/faults", json={"error_rate": 1.0, "error_statuses": [500]})
    assert put.status_code == 200 and put.json()["error_rate"] == 1.0
    assert client.get("/v1/associations/A1").status_code == 500
    assert client.patch("/_admin/faults", json={"error_rate": 0}).json()["error_statuses"] == [500]
    assert client.put("/_admin/faults", json={"error_rate": 2}).status_code == 422
    assert client.put("/_admin/faults", json={"bogus": 1}).status_code == 422
    assert (
        client.put("/_admin/faults", json={"drop_rate": 0.6, "error_rate": 0.6}).status_code == 422
    )

    mutated = client.post(
        "/_admin/dataset", json={"op": "update_game", "args": {"game_id": "G1-1", "home_score": 9}}
    )
    assert mutated.status_code == 200 and mutated.json()["result"]["home_score"] == 9
    assert client.post("/_admin/dataset", json={"op": "reset"}).status_code == 422
    missing = client.post(
        "/_admin/dataset", json={"op": "remove_game", "args": {"game_id": "G1-999"}}
    )
    assert missing.status_code == 404

    assert client.get("/_admin/stats").json()["total"] == 1  # admin calls are not counted
    assert client.post("/_admin/reset").json() == {"dataset": True, "faults": True, "stats": True}
    assert upstream.dataset.game("G1-1").home_score != 9
    assert client.get("/_admin/faults").json()["error_rate"] == 0
    assert client.get("/_admin/stats").json()["total"] == 0
    assert client.get("/_admin/info").json()["counts"]["games"] == 1080


# --------------------------------------------------------------------------- dataset


def test_demo_preset_sizes() -> None:
    counts = load_preset("demo").counts()
    assert counts == {
        "associations": 3,
        "clubs": 36,
        "competitions": 12,
        "teams": 120,
        "games": 1080,
    }


def test_dataset_is_deterministic_for_a_seed() -> None:
    def snapshot(dataset: Dataset) -> list[Any]:
        return [
            (
                dataset.expected_competitions(a),
                [dataset.expected_teams(c) for c in dataset.competitions],
            )
            for a in dataset.associations
        ] + [dataset.expected_games(c) for c in reversed(list(dataset.competitions))]

    assert snapshot(Dataset.generate(seed=7)) == snapshot(Dataset.generate(seed=7))
    assert snapshot(Dataset.generate(seed=7)) != snapshot(Dataset.generate(seed=8))
    # Games do not depend on the order competitions are generated in (lazy generation).
    lazy = Dataset.generate(seed=7)
    assert lazy.expected_games("K7") == Dataset.generate(seed=7).expected_games("K7")


def test_generated_data_is_realistic() -> None:
    dataset = Dataset.generate(seed=7)
    games = [g for c in dataset.competitions for g in dataset.expected_games(c)]
    teams = [t for c in dataset.competitions for t in dataset.expected_teams(c)]
    statuses = [g["status"] for g in games]
    assert statuses.count("final") > len(games) / 2
    assert {"scheduled", "postponed"} <= set(statuses)
    for game in games:
        assert datetime.fromisoformat(game["scheduled_at"]).tzinfo is not None
        assert datetime.fromisoformat(game["updated_at"]) <= REFERENCE_NOW
        assert (game["home_score"] is None) == (
            game["status"] in ("scheduled", "postponed", "cancelled")
        )
    assert any(g["venue"] is None for g in games) and any(g["round"] is None for g in games)
    assert any(t["club_id"] is None for t in teams)
    fielded = [len(dataset.expected_club_competitions(club_id)) for club_id in dataset.clubs]
    assert max(fielded) >= 3  # a club fields teams in several competitions


def test_sized_dataset_is_lazy() -> None:
    started = time.monotonic()
    dataset = Dataset.sized(competitions=4000, teams_per_competition=16, games_per_competition=250)
    assert dataset.counts()["games"] == 1_000_000
    assert list(dataset.associations) == ["A1"]
    assert len(dataset.expected_games("K4000")) == 250
    assert time.monotonic() - started < 5


def test_unicode_names_round_trip(upstream: UpstreamServer, client: httpx.Client) -> None:
    names = {c["name"] for c in walk(client, "/v1/associations/A2/competitions")}
    for competition_id in ("K5", "K6", "K7", "K8"):
        response = client.get(f"/v1/competitions/{competition_id}/teams")
        assert b"\\u" not in response.content  # raw UTF-8, not ASCII escapes
        names |= {t["name"] for t in response.json()["items"]}
    clubs = {
        client.get(f"/v1/clubs/{club_id}").json()["name"] for club_id in upstream.dataset.clubs
    }
    assert {
        "FC Zürich",
        "Ölands BK",
        "Sporting Clube de Portugal",
        "浦和レッドダイヤモンズ",
        "نادي الهلال",
    } <= clubs
    assert "Queen's Park FC" in clubs
    assert any("'" in name for name in names)
    assert clubs == {club.name for club in upstream.dataset.clubs.values()}


# --------------------------------------------------------------------------- mutations


def test_mutations_are_visible_over_http(upstream: UpstreamServer, client: httpx.Client) -> None:
    dataset = upstream.dataset
    games_path = "/v1/competitions/K2/games"
    watermark = max(g["updated_at"] for g in dataset.expected_games("K2"))

    updated = dataset.update_game("G2-3", home_score=7, away_score=0, status="final")
    assert updated["updated_at"] > watermark
    changed = walk(client, games_path, updated_since=updated["updated_at"])
    assert [g["id"] for g in changed] == ["G2-3"] and changed[0]["home_score"] == 7

    later = dataset.update_game("G2-4", venue=None)
    assert later["updated_at"] > updated["updated_at"]  # monotonic clock

    dataset.remove_game("G2-5")
    team_ids = [t["id"] for t in dataset.expected_teams("K2")]
    added = dataset.add_game(
        "K2",
        home_team_id=team_ids[0],
        away_team_id=team_ids[1],
        scheduled_at="2025-06-01T18:00:00+01:00",
    )
    served = walk(client, games_path, limit=17)
    ids = [g["id"] for g in served]
    assert "G2-5" not in ids and ids[-1] == added["id"] and len(ids) == 90
    assert served == dataset.expected_games("K2")

    removed_games = dataset.remove_team(team_ids[2])
    assert removed_games and all(
        g not in {x["id"] for x in walk(client, games_path)} for g in removed_games
    )
    assert team_ids[2] not in {t["id"] for t in walk(client, "/v1/competitions/K2/teams")}

    with pytest.raises(KeyError):
        dataset.remove_game("G2-5")
    with pytest.raises(ValueError):
        dataset.add_game(
            "K2", home_team_id="T1-1", away_team_id=team_ids[0], scheduled_at=REFERENCE_NOW
        )


def test_invalid_and_duplicate_items(upstream: UpstreamServer, client: httpx.Client) -> None:
    dataset = upstream.dataset
    kinds: list[InvalidKind] = [
        "missing_field",
        "wrong_type",
        "bad_timestamp",
        "naive_timestamp",
        "unknown_status",
        "foreign_team",
        "null_id",
        "not_an_object",
    ]
    injected = {
        kind: dataset.inject_invalid("K1", kind, position=index * 11)
        for index, kind in enumerate(kinds)
    }
    corrupted = dataset.inject_invalid("K1", "unknown_status", replace_id="G1-2")
    dataset.inject_invalid("K1", "missing_field", resource="teams")
    dataset.duplicate_item("K1", "G1-1", position=80)

    served = walk(client, "/v1/competitions/K1/games", limit=20)
    assert served == dataset.expected_games("K1")
    assert len(served) == 90 + len(kinds) + 1
    assert all(payload in served for payload in injected.values())
    assert corrupted in served and corrupted["status"] == "abandoned"
    assert "home_team_id" not in injected["missing_field"]
    assert injected["wrong_type"]["home_score"] == "three"
    assert injected["bad_timestamp"]["scheduled_at"] == "31/02/2025 19:30"
    assert isinstance(injected["not_an_object"], str)
    k1_teams = {t["id"] for t in dataset.expected_teams("K1", valid_only=True)}
    assert injected["foreign_team"]["away_team_id"] not in k1_teams
    copies = [i for i, g in enumerate(served) if isinstance(g, dict) and g.get("id") == "G1-1"]
    assert len(copies) == 2 and copies[1] // 20 > copies[0] // 20  # on a later page
    assert any("name" not in t for t in walk(client, "/v1/competitions/K1/teams"))

    valid = dataset.expected_games("K1", valid_only=True)
    assert len(valid) == len({g["id"] for g in valid}) == 89  # corrupt G1-2 and the copy drop

    assert dataset.update_game("G1-2", status="final")["status"] == "final"  # repairs it
    dataset.clear_invalid("K1")
    assert dataset.expected_games("K1", valid_only=True) == dataset.expected_games("K1")
    assert len(dataset.expected_games("K1")) == 90


def test_update_game_accepts_explicit_timestamp(upstream: UpstreamServer) -> None:
    stamp = datetime(2030, 1, 1, tzinfo=UTC)
    assert (
        upstream.dataset.update_game("G3-1", updated_at=stamp)["updated_at"]
        == "2030-01-01T00:00:00Z"
    )
    assert upstream.dataset.clock == stamp
    after = upstream.dataset.update_game("G3-2")
    assert datetime.fromisoformat(after["updated_at"]) == stamp + timedelta(seconds=1)
    with pytest.raises(TypeError):
        upstream.dataset.update_game("G3-2", colour="red")


# --------------------------------------------------------------------------- lifecycle


def test_stop_cuts_keep_alive_connections() -> None:
    server = UpstreamServer(Dataset.generate(seed=3, associations=1)).start()
    try:
        with httpx.Client(base_url=server.url) as http:
            assert http.get("/v1/associations/A1").status_code == 200
            server.faults.set(latency_ms=5_000)
            started = time.monotonic()
            server.stop()
            assert time.monotonic() - started < 2
            with pytest.raises(httpx.TransportError):
                http.get("/v1/associations/A1")
    finally:
        server.stop()
    assert not server.running


def test_cli_serves_until_sigterm() -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devstack.sports",
            "--port",
            "0",
            "--size",
            "small",
            "--token",
            "t",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = next(word for word in line.split() if word.startswith("http://"))
        assert "games=24" in line
        response = httpx.get(
            f"{url}/v1/competitions/K1/teams", headers={"Authorization": "Bearer t"}
        )
        assert response.status_code == 200 and len(response.json()["items"]) == 4
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
