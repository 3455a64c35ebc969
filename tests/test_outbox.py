"""The transactional outbox (openhumans.outbox) and ``manage.py openhumans_deliver``."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from openhumans.models import OpenHumansMember
from openhumans.outbox import OutboxEntry, deliver, queue_delete, queue_message, queue_upload

pytestmark = pytest.mark.django_db

META = {"description": "summary", "tags": ["summary"]}


def deliver_cmd(*args: str) -> str:
    out = io.StringIO()
    call_command("openhumans_deliver", *args, stdout=out)
    return out.getvalue()


def test_nothing_is_queued_or_sent_when_the_transaction_rolls_back(
    member_factory: Any, sandbox: Any, django_capture_on_commit_callbacks: Any
) -> None:
    alice = member_factory("alice")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        with transaction.atomic():
            queue_message(alice, "Hi", "Hello")
            raise RuntimeError("the change failed")
    assert not OutboxEntry.objects.exists()
    assert sandbox.inbox() == []


def test_entries_are_delivered_after_commit(
    member_factory: Any, sandbox: Any, django_capture_on_commit_callbacks: Any
) -> None:
    alice = member_factory("alice")
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            message = queue_message(alice, "Hi", "Hello")
            upload = queue_upload(alice, b'{"n": 1}', "summary.json", META)
            assert sandbox.inbox() == []  # nothing leaves before the commit
    assert [m["project_subject"] for m in sandbox.inbox()] == ["Hi"]
    assert [f["basename"] for f in sandbox.files(alice.oh_id)] == ["summary.json"]
    for entry in (message, upload):
        entry.refresh_from_db()
        assert entry.status == OutboxEntry.DELIVERED and entry.delivered is not None
    assert upload.content is None  # the bytes go once delivered


def test_a_redelivered_upload_replaces_the_file_instead_of_adding_one(
    member_factory: Any, sandbox: Any, django_capture_on_commit_callbacks: Any
) -> None:
    alice = member_factory("alice")
    with django_capture_on_commit_callbacks(execute=True):
        queue_upload(alice, b"1", "summary.json", META)
        queue_upload(alice, b"2", "summary.json", META)
    assert [f["basename"] for f in sandbox.files(alice.oh_id)] == ["summary.json"]


def test_an_outage_keeps_entries_pending_until_delivered_once(
    member_factory: Any, sandbox: Any, django_capture_on_commit_callbacks: Any
) -> None:
    members = [member_factory(f"m{i}") for i in range(5)]
    sandbox.set_fault("/", error_rate=1.0, status=503)
    with django_capture_on_commit_callbacks(execute=True):
        for member in members:
            queue_message(member, "Hi", "Hello")
    entries = OutboxEntry.objects.all()
    assert {e.status for e in entries} == {OutboxEntry.PENDING}
    assert all("ServerError" in e.last_error and e.attempts == 1 for e in entries)

    with pytest.raises(CommandError, match="not delivered"):
        deliver_cmd("--now")  # still failing: exit status 1
    sandbox.clear_faults()
    assert "5 delivered, 0 still pending, 0 given up" in deliver_cmd("--now")
    assert sorted(m["project_member_id"] for m in sandbox.inbox()) == sorted(
        m.oh_id for m in members
    )
    assert "0 delivered" in deliver_cmd("--now")  # nothing is sent twice


def test_an_entry_for_a_member_who_left_is_given_up_with_a_record(member_factory: Any) -> None:
    alice = member_factory("alice")
    entry = queue_delete(alice, all_files=True)  # no commit here (no on_commit run)
    OpenHumansMember.objects.filter(pk=alice.oh_id).delete()
    assert deliver(entry.pk) == OutboxEntry.FAILED
    entry.refresh_from_db()
    assert entry.status == OutboxEntry.FAILED and "MemberDeauthorizedError" in entry.last_error


def test_an_entry_held_by_another_worker_is_not_sent_twice(
    member_factory: Any, sandbox: Any
) -> None:
    alice = member_factory("alice")
    entry = queue_message(alice, "Hi", "Hello")
    OutboxEntry.objects.filter(pk=entry.pk).update(
        status=OutboxEntry.SENDING, claimed_until=entry.created.replace(year=2999)
    )
    assert deliver(entry.pk) == OutboxEntry.SENDING
    assert sandbox.inbox() == []
    # A claim that expired (the worker died) is taken over.
    OutboxEntry.objects.filter(pk=entry.pk).update(claimed_until=entry.created)
    assert deliver(entry.pk) == OutboxEntry.DELIVERED
    assert len(sandbox.inbox()) == 1


def test_bad_arguments_write_nothing(member_factory: Any) -> None:
    alice = member_factory("alice")
    with pytest.raises(ValueError):
        queue_upload(alice, b"x", "a/b.json", META)
    with pytest.raises(ValueError):
        queue_delete(alice)
    assert not OutboxEntry.objects.exists()


def test_the_admin_lists_entries_without_their_content(
    admin_client: Any, member_factory: Any
) -> None:
    alice = member_factory("alice")
    entry = queue_upload(alice, b"SECRET-BYTES", "summary.json", META)
    for url in (
        "/admin/openhumans/outboxentry/",
        f"/admin/openhumans/outboxentry/{entry.pk}/change/",
    ):
        response = admin_client.get(url)
        assert response.status_code == 200
        assert b"SECRET-BYTES" not in response.content
        assert alice.access_token.encode() not in response.content


# -- deauthorization notices (issue 12: the notice owed on local delete is an outbox entry) --


def test_deleting_a_member_queues_its_notice_in_the_same_transaction(
    member_factory: Any, sandbox: Any, django_capture_on_commit_callbacks: Any
) -> None:
    alice, bob = member_factory("alice"), member_factory("bob")
    alice_id, bob_id = alice.oh_id, bob.oh_id  # delete() clears the primary key
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        with transaction.atomic():
            alice.delete()
            raise RuntimeError("the delete failed")
    assert not OutboxEntry.objects.exists()  # rolled back with the delete, nothing sent
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            bob.delete()
            (entry,) = OutboxEntry.objects.all()
            assert entry.kind == OutboxEntry.DEAUTH and entry.project_member_id == bob_id
            assert entry.refresh_token == bob.refresh_token  # the pair, for remove-members
            assert sandbox.member(bob_id)["active"]  # nothing leaves before the commit
    entry.refresh_from_db()
    assert entry.status == OutboxEntry.DELIVERED
    assert not sandbox.member(bob_id)["active"] and sandbox.member(alice_id)["active"]
    # Delivered: the deleted member's pair is not kept.
    assert entry.access_token is None and entry.refresh_token is None


def test_a_deauth_notice_is_delivered_by_openhumans_deliver(
    member_factory: Any, sandbox: Any, django_capture_on_commit_callbacks: Any
) -> None:
    alice = member_factory("alice")
    pmid = alice.oh_id
    sandbox.set_fault("/api/direct-sharing/project/remove-members/", error_rate=1.0, status=503)
    with django_capture_on_commit_callbacks(execute=True):
        alice.delete()
    assert OutboxEntry.objects.get().status == OutboxEntry.PENDING
    sandbox.clear_faults()
    assert "1 delivered, 0 still pending, 0 given up" in deliver_cmd("--now")
    assert not sandbox.member(pmid)["active"]


def test_the_admin_never_shows_a_notice_token(admin_client: Any, member_factory: Any) -> None:
    alice = member_factory("alice")
    alice.delete()  # no commit here: the notice stays pending
    entry = OutboxEntry.objects.get()
    for url in (
        "/admin/openhumans/outboxentry/",
        f"/admin/openhumans/outboxentry/{entry.pk}/change/",
        "/admin/openhumans/pendingdeauthnotice/",
        f"/admin/openhumans/pendingdeauthnotice/{entry.pk}/change/",
    ):
        response = admin_client.get(url)
        assert response.status_code == 200
        for token in (alice.access_token, alice.refresh_token):
            assert token.encode() not in response.content
    refused = admin_client.get("/admin/openhumans/outboxentry/", {"refresh_token__regex": "^a"})
    assert refused.status_code == 400
