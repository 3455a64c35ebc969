"""Runs the Recipes page's examples (docs/examples/recipes.py) against the sandbox."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from openhumans.exceptions import ServerError
from openhumans.signals import member_authorized

from .helpers import log_in

_path = Path(__file__).resolve().parents[1] / "docs" / "examples" / "recipes.py"
_spec = importlib.util.spec_from_file_location("docs_example_recipes", _path)
recipes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(recipes)


@pytest.fixture
def connected_import():
    member_authorized.connect(recipes.start_import, dispatch_uid="test.start_import")
    yield
    member_authorized.disconnect(dispatch_uid="test.start_import")


def test_an_import_starts_when_someone_connects(
    sandbox, client, transactional_db, connected_import
):
    pmid = sandbox.create_member(username="alice")["project_member_id"]
    log_in(client, sandbox, pmid)
    [imported] = sandbox.files(pmid)
    assert imported["basename"] == "steps.json"
    assert imported["metadata"]["tags"] == ["steps"]


def test_latest_survey_answers(sandbox, member_factory):
    member = member_factory()
    assert recipes.latest_survey_answers(member) is None
    survey = {"description": "Survey", "tags": ["survey"]}
    member.upload_json({"mood": 3}, "survey-1.json", survey)
    sandbox.advance_clock(60)
    member.upload_json({"mood": 5}, "survey-2.json", survey)
    assert recipes.latest_survey_answers(member) == {"mood": 5}


def test_save_daily_summary_replaces_the_old_one(sandbox, member_factory):
    member = member_factory()
    first, _ = recipes.save_daily_summary(member, {"2026-11-29": 8123})
    second, deleted = recipes.save_daily_summary(member, {"2026-11-30": 9045})
    assert deleted == [first.id]
    [only] = member.list_files()
    assert only["id"] == second.id
    assert member.read_json(only)["steps"] == {"2026-11-30": 9045}


def test_save_daily_summary_keeps_the_old_one_when_the_upload_fails(sandbox, member_factory):
    member = member_factory()
    first, _ = recipes.save_daily_summary(member, {"2026-11-29": 8123})
    sandbox.set_fault("/api/direct-sharing/project/files/upload/direct/", status=503, error_rate=1)
    with pytest.raises(ServerError):
        recipes.save_daily_summary(member, {"2026-11-30": 9045})
    sandbox.clear_faults()
    assert [f["id"] for f in member.list_files()] == [first.id]
