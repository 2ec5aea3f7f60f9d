"""Data quality checks of a session, recorded in f1.quality_checks (an audit trail,
append-only: never undone), and the upstream gaps they find.

Each check is one row: check_id (`completeness.*`, `consistency.*`, `timeliness.*`),
severity (error / warn / info), passed, and a detail naming the offending items. Lists
in a detail are cut to MAX_ITEMS (the detail says so), so a broken session cannot write
megabytes per run. The checks themselves are in quality_checks.py."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from activities.f1.quality_checks import CHECKS, CheckResult, newest_rows, timeliness
from pipeworks.db import Connection

MAX_ITEMS = 50


@dataclass
class QualityOutcome:
    """The results of one run's checks, and `gaps`: lap numbers below the highest seen that no
    driver has, for the caller to schedule a re-fetch (the laps watermark must not
    pass them)."""

    session_key: int
    results: list[CheckResult] = field(default_factory=list)
    gaps: list[int] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        return [c.check_id for c in self.results if not c.passed]

    @property
    def passed(self) -> bool:
        """No check of severity error failed."""
        return all(c.passed for c in self.results if c.severity == "error")

    def as_dict(self) -> dict[str, Any]:
        return {"session_key": self.session_key, "passed": self.passed,
                "failed": self.failed, "gaps": list(self.gaps),
                "results": [{"check_id": c.check_id, "severity": c.severity,
                            "passed": c.passed} for c in self.results]}


async def run_quality_checks(conn: Connection, session_key: int, *, run_id: str, live: bool,
                             now: datetime) -> QualityOutcome:
    """Run every check of the session (timeliness only when `live`: the age of each
    stream's newest row at `now`), record them with `checked_at` = `now`, and return
    the outcome."""
    outcome = QualityOutcome(session_key)
    for check in CHECKS:
        outcome.results.append(await check(conn, session_key))
    if live:
        # A session in progress has no results yet: expected, not a defect.
        outcome.results = [CheckResult(c.check_id, "info", c.passed, c.detail)
                          if c.check_id == "completeness.results" else c
                          for c in outcome.results]
        outcome.results.extend(timeliness(await newest_rows(conn, session_key), now))
    gaps = next(c for c in outcome.results if c.check_id == "completeness.lap_gaps")
    outcome.gaps = list(gaps.detail["lap_numbers"])
    await conn.execute(
        """
        INSERT INTO f1.quality_checks
            (session_key, check_id, severity, passed, detail, run_id, checked_at)
        SELECT $1, c.check_id, c.severity, c.passed, c.detail::jsonb, $2, $3
        FROM unnest($4::text[], $5::text[], $6::boolean[], $7::text[])
             AS c(check_id, severity, passed, detail)
        """,
        session_key, run_id, now, [c.check_id for c in outcome.results],
        [c.severity for c in outcome.results], [c.passed for c in outcome.results],
        [json.dumps(capped(c.detail), default=str) for c in outcome.results])
    return outcome


def capped(detail: dict[str, Any]) -> dict[str, Any]:
    """`detail` with every list (at any depth) cut to MAX_ITEMS; `truncated` is true
    when something was cut (counts stay whole: the checks put them beside the lists)."""
    cut = False

    def cap(value: Any) -> Any:
        nonlocal cut
        if isinstance(value, dict):
            return {k: cap(v) for k, v in value.items()}
        if isinstance(value, list):
            if len(value) > MAX_ITEMS:
                cut = True
            return [cap(v) for v in value[:MAX_ITEMS]]
        return value

    result: dict[str, Any] = cap(detail)
    if cut:
        result["truncated"] = True
    return result
