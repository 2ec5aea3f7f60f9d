"""How each F1 stream is judged and written (see pipeworks.staging.Stager), and its
per-(session, endpoint) state, written in the transaction that merges its rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from activities.f1.endpoints import SETTLED_LAPS_CTE, Endpoint
from pipeworks.db import Connection
from pipeworks.staging import StageOutcome, Verdict, array_items
from pipeworks.validation import describe

# The laps watermark: the newest start of a settled lap (constants only, no data).
_LAPS_WATERMARK = SETTLED_LAPS_CTE + "SELECT max(date_start) FROM settled_laps"  # noqa: S608


class EndpointStager:
    """One endpoint's items of one session (or, for the calendar, of one year)."""

    scope_per_row = False
    label_index: int | None = None
    items_of = staticmethod(array_items)

    def __init__(self, endpoint: Endpoint, *, session_key: int | None, run_id: str,
                 delete_where: tuple[str, Sequence[Any]] | None, keeps_state: bool) -> None:
        self.endpoint = endpoint
        self.entity = endpoint.name
        self.spec = endpoint.spec
        # Items must belong to this session (when they carry a session_key at all).
        self.session_key = session_key
        self.run_id = run_id
        self._keeps_state = keeps_state
        self._delete_where = delete_where
        self._judged = 0

    async def prepare(self, conn: Connection) -> None:
        return None

    def judge(self, item: Any) -> Verdict:
        self._judged += 1
        try:
            valid = self.endpoint.model.model_validate(item)
        except ValidationError as err:
            return Verdict(key=self._raw_key(item), invalid_reason=describe(err))
        row = self.endpoint.row(valid)
        key = tuple(row[self.spec.columns.index(k)] for k in self.spec.keys)
        session_key = getattr(valid, "session_key", self.session_key)
        if self.session_key is not None and session_key != self.session_key:
            return Verdict(key=None, invalid_reason=(
                f"session_key: {session_key} is not the session asked for ({self.session_key})"))
        return Verdict(key[0] if len(key) == 1 else key, row)

    def _raw_key(self, item: Any) -> Any:
        """An invalid item's key when its key fields are usable: a full sync then keeps
        the row it had instead of deleting it as no longer listed."""
        if not isinstance(item, dict) or self.endpoint.name == "race_control":
            return None
        parts = [item.get(k) for k in self.endpoint.key_fields]
        if not all(isinstance(p, int) and not isinstance(p, bool) for p in parts):
            return None
        return parts[0] if len(parts) == 1 else tuple(parts)

    def judge_page(self, body: bytes) -> list[Verdict] | None:
        return None  # item by item: a session's streams are thousands of items, not millions

    def delete_scope(self) -> tuple[str, Sequence[Any]] | None:
        # An empty answer is not final (f1-api.md): it never deletes what was there.
        return self._delete_where if self._judged else None

    async def finish(self, conn: Connection, outcome: StageOutcome) -> None:
        if not self._keeps_state or self.session_key is None:
            return  # the calendar and the header have no per-session state
        state = ("empty" if outcome.fetched == 0
                 else "partial" if outcome.invalid else "ok")
        watermark = None
        if self.endpoint.time_field is not None:
            query = (_LAPS_WATERMARK if self.endpoint.name == "laps"
                     else self.endpoint.newest_sql)
            watermark = await conn.fetchval(query, self.session_key)
        detail = (f"{outcome.invalid} invalid items dead-lettered" if outcome.invalid
                  else None)
        await record_state(conn, self.session_key, self.endpoint.name, state, watermark,
                           outcome.fetched, detail, self.run_id, outcome.load_id)


async def record_state(conn: Connection, session_key: int, endpoint: str, outcome: str,
                       watermark: Any, rows_seen: int, detail: str | None, run_id: str,
                       load_id: str | None) -> None:
    """A failed or empty pull keeps the watermark merged data reached before."""
    await conn.execute(
        """
        INSERT INTO f1.stream_state AS s
            (session_key, endpoint, outcome, watermark, rows_seen, detail, run_id, load_id,
             updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
        ON CONFLICT (session_key, endpoint) DO UPDATE SET
            outcome = EXCLUDED.outcome,
            watermark = coalesce(EXCLUDED.watermark, s.watermark),
            rows_seen = EXCLUDED.rows_seen, detail = EXCLUDED.detail,
            run_id = EXCLUDED.run_id, load_id = coalesce(EXCLUDED.load_id, s.load_id),
            updated_at = now()
        """,
        session_key, endpoint, outcome, watermark, rows_seen, detail, run_id, load_id)
