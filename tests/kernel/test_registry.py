"""The registry: pipelines found through entry points, registered at run time, composed
by the CLI; names clash loudly."""

from __future__ import annotations

import json

import pytest

from pipeworks import registry
from pipeworks.registry import Pipeline, RegistryError
from starters.cli import run_command
from tests.example.pipeline import EXAMPLE


def test_installed_pipelines_come_from_entry_points() -> None:
    assert "sports_sync" in [p.name for p in registry.installed()]


def test_a_name_registered_twice_is_an_error() -> None:
    with registry.registered(EXAMPLE):
        twin = Pipeline(name=EXAMPLE.name, workflows=(), activities=lambda resources: [])
        with pytest.raises(RegistryError, match="two pipelines are named 'example'"):
            registry.register(twin)
        registry.register(EXAMPLE)  # the same value again: no clash
    assert "example" not in [p.name for p in registry.installed()]


def test_a_worker_serves_the_pipelines_it_is_told_to() -> None:
    with registry.registered(EXAMPLE):
        assert [p.name for p in registry.selected("example")] == ["example"]
        assert len(registry.selected("")) == len(registry.installed())
        with pytest.raises(RegistryError, match="no pipeline named 'nope'"):
            registry.selected("example, nope")


def test_pipelines_command_lists_workflows_and_upstream_settings(
        capsys: pytest.CaptureFixture[str]) -> None:
    with registry.registered(EXAMPLE):
        assert run_command(["pipelines", "--json"]) == 0
    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert listed["sports_sync"]["workflows"] == [
        "AccountSyncWorkflow", "BatchSyncWorkflow", "CompetitionsSyncWorkflow"]
    assert "PIPEWORKS_SPORTS_API_URL" in listed["sports_sync"]["upstream_settings"]
    assert listed["sports_sync"]["schedule_actions"] == ["sync", "sync-all"]
    assert listed["example"]["workflows"] == ["ExampleSyncWorkflow"]
    assert listed["example"]["upstream_settings"] == ["PIPEWORKS_EXAMPLE_API_URL"]


def test_search_attributes_are_the_kernels_then_each_pipelines() -> None:
    names = [key.name for key in registry.search_attribute_keys()]
    assert names[:2] == ["Pipeline", "Stage"] and {"OrgKind", "OrgId"} <= set(names)
