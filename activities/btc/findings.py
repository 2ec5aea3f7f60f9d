"""Findings (`btc.discrepancies`): what a reconciliation found, height by height.

Append-only and idempotent: at most one open finding per (height, check, field); seeing
it again updates it (last run, last seen), so a retried batch never adds one. A finding
not seen again when a later run covers its height is resolved, not deleted."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from pipeworks.db import Connection

ERROR, WARNING, INFO = "error", "warning", "info"
CATEGORIES = ("missing_block", "duplicate_block", "stale_block", "partial_block",
              "count_mismatch", "value_mismatch", "invariant_violation", "supply_mismatch",
              "underclaim", "unverifiable")
INFO_CATEGORIES = frozenset({"underclaim", "unverifiable"})


@dataclasses.dataclass
class Finding:
    height: int
    check: str
    field: str
    category: str
    ours: int | Decimal | None = None
    theirs: int | Decimal | None = None
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def severity(self) -> str:
        return INFO if self.category in INFO_CATEGORIES else ERROR

    @property
    def key(self) -> tuple[int, str, str]:
        return (self.height, self.check, self.field)


def unique(findings: Iterable[Finding]) -> list[Finding]:
    """One per key (the last): an upsert batch must not hold one key twice."""
    return list({f.key: f for f in findings}.values())


async def record_findings(conn: Connection, findings: Sequence[Finding], run_id: str
                          ) -> list[Finding]:
    """Upserts `findings` (inside the batch's transaction); returns those that are new
    (not open before), for the alert."""
    findings = unique(findings)
    if not findings:
        return []
    rows = await conn.fetch(
        """
        INSERT INTO btc.discrepancies AS d
            (height, "check", field, ours, theirs, category, severity, detail,
             first_run_id, last_run_id, first_seen_at, last_seen_at)
        SELECT f.height, f.check, f.field, f.ours, f.theirs, f.category, f.severity,
               f.detail::jsonb, $9, $9, now(), now()
        FROM unnest($1::int[], $2::text[], $3::text[], $4::numeric[], $5::numeric[],
                    $6::text[], $7::text[], $8::text[])
             AS f(height, "check", field, ours, theirs, category, severity, detail)
        ON CONFLICT (height, "check", field) WHERE resolved_at IS NULL DO UPDATE SET
            ours = EXCLUDED.ours, theirs = EXCLUDED.theirs, category = EXCLUDED.category,
            severity = EXCLUDED.severity, detail = EXCLUDED.detail,
            last_run_id = EXCLUDED.last_run_id, last_seen_at = EXCLUDED.last_seen_at
        RETURNING height, "check", field, (xmax = 0) AS inserted
        """,
        [f.height for f in findings], [f.check for f in findings],
        [f.field for f in findings], [f.ours for f in findings],
        [f.theirs for f in findings], [f.category for f in findings],
        [f.severity for f in findings],
        [json.dumps(f.detail, default=str, sort_keys=True) for f in findings], run_id)
    inserted = {(r["height"], r["check"], r["field"]) for r in rows if r["inserted"]}
    return [f for f in findings if f.key in inserted]


async def resolve_unseen(conn: Connection, lo: int, hi: int, seen: Sequence[Finding],
                         skipped: Sequence[int], run_id: str, *, checks: Sequence[str] | None
                         = None, exclude_checks: Sequence[str] = ("supply",)) -> int:
    """Resolves the open findings of heights lo..hi (of `checks`, or all but
    `exclude_checks`) that this run did not see again; `skipped` heights were not
    covered (beyond the tip) and keep theirs."""
    result = await conn.execute(
        """
        UPDATE btc.discrepancies d SET resolved_at = now(), resolved_run_id = $6
        WHERE d.resolved_at IS NULL AND d.height BETWEEN $1 AND $2
          AND NOT (d.height = ANY($5::int[]))
          AND ($7::text[] IS NULL OR d."check" = ANY($7::text[]))
          AND NOT (d."check" = ANY($8::text[]))
          AND (d.height, d."check", d.field) NOT IN (
              SELECT * FROM unnest($3::int[], $4::text[], $9::text[]))
        """,
        lo, hi, [f.height for f in seen], [f.check for f in seen], list(skipped), run_id,
        list(checks) if checks is not None else None, list(exclude_checks),
        [f.field for f in seen])
    return int(result.split()[-1])
