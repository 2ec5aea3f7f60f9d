"""`pipeworks f1 metrics ...`: the versions of the derived metrics' parameters. Adding a
version and activating it changes the metrics of every session at its next sync; rolling
back means activating the previous version again (`f1.metric_params`)."""

from __future__ import annotations

import json
from typing import Any

from activities.f1.params import MetricParams, activate, active_params, add_version
from pipeworks.db import connect


async def versions(dsn: str) -> list[dict[str, Any]]:
    conn = await connect(dsn)
    try:
        await active_params(conn)  # v1 is there even before the first sync
        rows = await conn.fetch("SELECT version, active, note, created_at, params"
                                " FROM f1.metric_params ORDER BY created_at, version")
        return [dict(r) for r in rows]
    finally:
        await conn.close()


async def add(dsn: str, version: str, changes: dict[str, Any], note: str, make_active: bool
              ) -> bool:
    """A version with the active one's parameters but `changes`; False: it existed with
    the same parameters. Bad names or values raise ValueError."""
    conn = await connect(dsn)
    try:
        _, current = await active_params(conn)
        params = MetricParams.model_validate({**current.model_dump(), **changes})
        return await add_version(conn, version, params, note, make_active=make_active)
    finally:
        await conn.close()


async def switch(dsn: str, version: str) -> None:
    conn = await connect(dsn)
    try:
        await activate(conn, version)
    finally:
        await conn.close()


def parse_changes(settings: list[str]) -> dict[str, Any]:
    """`name=value` pairs, values as JSON (`pace_window=1.05`)."""
    changes: dict[str, Any] = {}
    for setting in settings:
        name, sep, text = setting.partition("=")
        if not sep or not name:
            raise ValueError(f"--set: NAME=VALUE, not {setting!r}")
        try:
            changes[name] = json.loads(text)
        except ValueError:
            raise ValueError(f"--set {name}: {text!r} is not a JSON value") from None
    return changes
