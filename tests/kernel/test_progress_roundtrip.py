"""`RunProgress.from_dict(p.as_dict())` rebuilds the progress exactly, extra sections
included, so the document can travel across continue-as-new."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeworks.errors import ErrorCategory
from pipeworks.progress import (
    FINAL_STATUSES,
    RecordCounts,
    RunProgress,
    StageProgress,
)

T0 = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)


def busy_progress() -> RunProgress:
    progress = RunProgress.new("wf-1", "demo", ["first", "second", "third"], T0)
    progress.status = "running"
    first = progress.stage("first")
    first.status, first.total, first.done = "done", 3, 3
    first.records.add(fetched=30, staged=28, invalid=2)
    second = progress.stage("second")
    second.status, second.total, second.done, second.failed = "running", 7, 2, 1
    second.records.add(fetched=5)
    progress.count_error(ErrorCategory.TRANSIENT)
    progress.count_errors({"data": 2})
    progress.touch(T0 + timedelta(minutes=5, microseconds=7), "halfway: «ünïcode» ✓")
    return progress


def test_a_fresh_and_a_busy_document_round_trip_exactly() -> None:
    for progress in [RunProgress.new("wf-0", "demo", [], T0), busy_progress()]:
        document = progress.as_dict()
        again = RunProgress.from_dict(document)
        assert again.as_dict() == document
        assert again == progress
        # And through JSON, as Temporal carries it.
        assert RunProgress.from_dict(json.loads(json.dumps(document))).as_dict() == document


def test_timestamps_stay_rfc3339_with_z() -> None:
    document = RunProgress.from_dict(busy_progress().as_dict()).as_dict()
    assert document["started_at"] == "2030-01-01T12:00:00.123456Z"
    assert document["updated_at"] == "2030-01-01T12:05:00.123463Z"


def test_extra_sections_are_published_kept_and_never_override_the_contract() -> None:
    progress = busy_progress()
    before = progress.as_dict()
    progress.publish("breakers", {"upstream": {"state": "open", "opened": 2}})
    document = progress.as_dict()
    assert document["breakers"] == {"upstream": {"state": "open", "opened": 2}}
    assert {k: v for k, v in document.items() if k != "breakers"} == before
    assert list(document)[-1] == "breakers"  # after the contract's keys
    again = RunProgress.from_dict(document)
    assert again.extra == {"breakers": {"upstream": {"state": "open", "opened": 2}}}
    assert again.as_dict() == document
    # A returned document is a copy: changing it changes nothing in the run.
    document["breakers"]["upstream"]["state"] = "closed"
    assert progress.as_dict()["breakers"]["upstream"]["state"] == "open"
    with pytest.raises(ValueError, match="contract"):
        progress.publish("status", "hijacked")
    progress.extra["percent"] = -1  # even set behind publish's back
    assert progress.as_dict()["percent"] == before["percent"]


def test_without_extras_the_document_is_the_contracts_alone() -> None:
    assert list(busy_progress().as_dict()) == [
        "workflow_id", "pipeline", "status", "rolled_back", "percent", "stages", "records",
        "errors", "started_at", "updated_at", "message"]


def test_stage_and_counts_round_trip_on_their_own() -> None:
    stage = busy_progress().stage("second")
    assert StageProgress.from_dict(stage.as_dict()) == stage
    assert RecordCounts.from_dict(stage.records.as_dict()) == stage.records


def test_a_document_that_is_not_an_as_dict_output_is_refused() -> None:
    document = busy_progress().as_dict()
    with pytest.raises(ValueError, match="message"):
        RunProgress.from_dict({k: v for k, v in document.items() if k != "message"})
    with pytest.raises(ValueError, match="status"):
        RunProgress.from_dict({**document, "status": "sleeping"})
    with pytest.raises(ValueError, match="percent"):
        RunProgress.from_dict({**document, "percent": 99.0})
    with pytest.raises(ValueError, match="records"):
        RunProgress.from_dict({**document, "records": {"fetched": 0, "staged": 0,
                                                       "invalid": 0}})
    with pytest.raises(ValueError, match="integer"):
        RecordCounts.from_dict({"fetched": "1", "staged": 0, "invalid": 0})


# -- any state ------------------------------------------------------------------------

zones = st.sampled_from([UTC, timezone(timedelta(hours=-3)),
                         timezone(timedelta(hours=5, minutes=30))])
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                       timezones=zones)
counts = st.integers(0, 10**6)
stages = st.builds(
    StageProgress, name=st.text(max_size=12),
    status=st.sampled_from(["pending", "running", "done", "failed", "skipped"]),
    total=st.none() | counts, done=counts, failed=counts,
    records=st.builds(RecordCounts, counts, counts, counts))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=8)
runs = st.builds(
    RunProgress, workflow_id=st.text(max_size=20), pipeline=st.text(max_size=10),
    stages=st.lists(stages, max_size=4), started_at=moments, updated_at=moments,
    status=st.sampled_from(["pending", "running", "compensating", *sorted(FINAL_STATUSES)]),
    rolled_back=st.booleans(), message=st.none() | st.text(max_size=40),
    errors=st.fixed_dictionaries({c.value: counts for c in ErrorCategory}),
    extra=st.dictionaries(st.sampled_from(["breakers", "controllers", "x"]), json_values,
                          max_size=2))


@settings(max_examples=200, deadline=None)
@given(runs)
def test_any_progress_round_trips(progress: RunProgress) -> None:
    document = progress.as_dict()
    assert RunProgress.from_dict(document).as_dict() == document
    assert RunProgress.from_dict(json.loads(json.dumps(document))).as_dict() == document
