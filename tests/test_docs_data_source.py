"""Runs docs/examples/data_source.py (the "Running a data-source project" page)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import call_command

from openhumans.models import OpenHumansMember
from openhumans.outbox import OutboxEntry

from .test_docs_examples import load_example

pytestmark = pytest.mark.django_db


@pytest.fixture
def example() -> Any:
    return load_example("data_source")


def test_nightly_import_replaces_each_active_members_file(
    example: Any, member_factory: Any, sandbox: Any
) -> None:
    alice, bob, carol = (member_factory(n) for n in ("alice", "bob", "carol"))
    OpenHumansMember.objects.filter(pk=carol.oh_id).update(oh_deauth=True)
    assert example.nightly_import() == 2
    assert example.nightly_import() == 2  # the next night replaces the file
    for member in (alice, bob):
        files = sandbox.files(member.oh_id)
        assert [f["basename"] for f in files] == ["steps.json"]
    assert sandbox.files(carol.oh_id) == []


def test_message_everyone(example: Any, sandbox: Any, settings: Any) -> None:
    settings.OPENHUMANS_MASTER_TOKEN = sandbox.master_token
    ids = {sandbox.create_member()["project_member_id"] for _ in range(3)}
    example.message_everyone()
    assert {m["project_member_id"] for m in sandbox.inbox()} == ids


def test_make_public_uploads_after_commit(
    example: Any, member_factory: Any, sandbox: Any, django_capture_on_commit_callbacks: Any
) -> None:
    alice = member_factory("alice")
    with django_capture_on_commit_callbacks(execute=True):
        example.make_public(alice, {"steps": 1})
    assert OpenHumansMember.objects.get(pk=alice.oh_id).public
    assert OutboxEntry.objects.get().status == OutboxEntry.DELIVERED
    (summary,) = sandbox.files(alice.oh_id)
    assert summary["basename"] == "summary.json"


def test_catching_up_on_missed_webhooks(member_factory: Any, sandbox: Any, settings: Any) -> None:
    settings.OPENHUMANS_MASTER_TOKEN = sandbox.master_token
    alice = member_factory("alice")
    sandbox.leave(alice.oh_id)  # the webhook never arrived
    out = io.StringIO()
    call_command("openhumans_sync", stdout=out)
    assert OpenHumansMember.objects.get(pk=alice.oh_id).oh_deauth
    assert json.dumps(alice.oh_id).strip('"') in out.getvalue()
