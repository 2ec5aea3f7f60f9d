"""Upstream paths of contracts/sports-api.md. Ids are opaque: always quoted."""

from __future__ import annotations

from urllib.parse import quote


def _q(value: str) -> str:
    return quote(value, safe="")


def organisation(kind: str, org_id: str) -> str:
    return f"/v1/{'associations' if kind == 'association' else 'clubs'}/{_q(org_id)}"


def competitions(kind: str, org_id: str) -> str:
    return organisation(kind, org_id) + "/competitions"


def teams(competition_id: str) -> str:
    return f"/v1/competitions/{_q(competition_id)}/teams"


def games(competition_id: str) -> str:
    return f"/v1/competitions/{_q(competition_id)}/games"
