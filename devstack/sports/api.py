"""The ``/v1`` endpoints of the sports API contract, independent of the HTTP transport."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import parse_qs, unquote

from devstack.http_server import JSON_TYPE, Response
from devstack.sports.cursor import CursorError, decode_cursor, encode_cursor, signature
from devstack.sports.dataset import Dataset, Page
from devstack.sports.listing import Key, encode
from devstack.sports.models import parse_rfc3339

__all__ = ["JSON_TYPE", "Response", "error_response", "handle", "route_template"]

DEFAULT_LIMIT = 100
MAX_LIMIT = 500

Kind = Literal[
    "association", "association_competitions", "club", "club_competitions", "teams", "games"
]

_ROUTES: dict[tuple[str, str | None], tuple[Kind, str]] = {
    ("associations", None): ("association", "/v1/associations/{id}"),
    ("associations", "competitions"): (
        "association_competitions",
        "/v1/associations/{id}/competitions",
    ),
    ("clubs", None): ("club", "/v1/clubs/{id}"),
    ("clubs", "competitions"): ("club_competitions", "/v1/clubs/{id}/competitions"),
    ("competitions", "teams"): ("teams", "/v1/competitions/{id}/teams"),
    ("competitions", "games"): ("games", "/v1/competitions/{id}/games"),
}
_ENTITY_NAMES: dict[Kind, str] = {
    "association": "association",
    "association_competitions": "association",
    "club": "club",
    "club_competitions": "club",
    "teams": "competition",
    "games": "competition",
}


@dataclass(frozen=True, slots=True)
class Route:
    kind: Kind
    template: str
    entity_id: str


class BadRequest(Exception):
    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail


def error_response(
    status: int, error: str, detail: str | None, headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    body = encode({"error": error, "detail": detail}).encode()
    return Response(status, body, JSON_TYPE, headers)


def match_route(path: str) -> Route | None:
    parts = path.split("/")
    # "/v1/clubs/C1-1" -> ["", "v1", "clubs", "C1-1"]
    if len(parts) not in (4, 5) or parts[0] != "" or parts[1] != "v1" or not parts[3]:
        return None
    found = _ROUTES.get((parts[2], parts[4] if len(parts) == 5 else None))
    if found is None:
        return None
    return Route(found[0], found[1], unquote(parts[3]))


def route_template(path: str) -> str:
    """The stats bucket of a path: its route template, so ids do not explode the counters."""
    route = match_route(path)
    if route is not None:
        return route.template
    return "/_admin" if path.startswith("/_admin/") else "(unknown)"


def _single(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest("bad_request", f"{name} given more than once")
    return values[0]


def _limit(params: dict[str, list[str]]) -> int:
    raw = _single(params, "limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(
            "bad_request", f"limit must be an integer from 1 to {MAX_LIMIT}, got {raw!r}"
        )
    return int(raw)


def _updated_since(params: dict[str, list[str]]) -> datetime | None:
    raw = _single(params, "updated_since")
    if raw is None:
        return None
    try:
        return parse_rfc3339(raw)
    except ValueError as exc:
        raise BadRequest(
            "bad_filter", f"updated_since must be an RFC 3339 timestamp with offset: {exc}"
        ) from exc


def _page_body(page: Page, sig: str) -> bytes:
    fragments, next_key = page
    cursor = "null" if next_key is None else json.dumps(encode_cursor(sig, next_key))
    return ('{"items":[' + ",".join(fragments) + '],"next_cursor":' + cursor + "}").encode()


def handle(dataset: Dataset, path: str, query: str) -> Response:
    """Serve one GET of a ``/v1`` path; never raises for client mistakes."""
    route = match_route(path)
    if route is None:
        return error_response(404, "not_found", f"no route for {path}")
    try:
        return _serve(dataset, route, parse_qs(query, keep_blank_values=True))
    except BadRequest as exc:
        return error_response(400, exc.error, exc.detail)
    except KeyError:
        name = _ENTITY_NAMES[route.kind]
        return error_response(404, "not_found", f"unknown {name} {route.entity_id!r}")


def _serve(dataset: Dataset, route: Route, params: dict[str, list[str]]) -> Response:
    entity_id = route.entity_id
    if route.kind == "association":
        return Response(200, dataset.association_fragment(entity_id).encode())
    if route.kind == "club":
        return Response(200, dataset.club_fragment(entity_id).encode())
    limit = _limit(params)
    filters = ""
    since: datetime | None = None
    if route.kind == "games":
        since = _updated_since(params)
        if since is not None:
            filters = "updated_since=" + since.astimezone(UTC).isoformat()
    # Keyed on the decoded id, so "C1-1" and "C1%2D1" share cursors.
    sig = signature(f"{route.template}|{entity_id}", filters)
    after = _after(params, sig)
    page: Page
    if route.kind == "association_competitions":
        page = dataset.page_competitions(entity_id, after, limit)
    elif route.kind == "club_competitions":
        page = dataset.page_club_competitions(entity_id, after, limit)
    elif route.kind == "teams":
        page = dataset.page_teams(entity_id, after, limit)
    else:
        page = dataset.page_games(entity_id, after, limit, since)
    return Response(200, _page_body(page, sig))


def _after(params: dict[str, list[str]], sig: str) -> Key | None:
    token = _single(params, "cursor")
    if not token:
        return None
    try:
        return decode_cursor(token, sig)
    except CursorError as exc:
        raise BadRequest("bad_cursor", str(exc)) from exc
