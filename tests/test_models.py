"""OpenHumansMember against the sandbox: the documented methods, tokens, deauth on delete."""

from __future__ import annotations

import io
import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from openhumans.exceptions import (
    InvalidArgumentError,
    MemberDeauthorizedError,
    OpenHumansAPIResponseError,
    OpenHumansError,
)
from openhumans.models import OpenHumansMember, PendingDeauthNotice, make_unique_username

from .helpers import api_requests, requires_postgres, token_requests

pytestmark = pytest.mark.django_db

METADATA = {"description": "an example file", "tags": ["json", "data"]}


def expire(member, sandbox):
    """Make the member's access token expired both here and on the sandbox."""
    sandbox.expire_access_tokens(member.oh_id)
    OpenHumansMember.objects.filter(pk=member.pk).update(
        token_expires=timezone.now() - timedelta(seconds=5)
    )


# -- identity --------------------------------------------------------------------------------


def test_str_is_readable_repr_as_documented_and_both_hide_tokens(member_factory):
    member = member_factory()
    # Changed in issue 14: str() titles the admin's pages; repr() keeps 0.2.0's form.
    assert str(member) == f"Open Humans member {member.oh_id}"
    assert repr(member) == f"<OpenHumansMember (oh_id='{member.oh_id}')>"
    member.oh_username = "alice"  # set by the member toolkit where Open Humans sent it
    assert str(member) == f"Open Humans member {member.oh_id} (alice)"
    assert member.access_token not in str(member)
    assert member.access_token not in repr(member)
    assert member.refresh_token not in repr(member)
    assert get_user_model().objects.get().openhumansmember == member


def test_old_error_names_are_importable():
    from openhumans.exceptions import OpenHumansAPIResponseError as A
    from openhumans.exceptions import OpenHumansError as B

    assert issubclass(A, B)


def test_create_makes_a_user_named_after_the_member(db):
    data = {"access_token": "a" * 30, "refresh_token": "r" * 30, "expires_in": 36000}
    member = OpenHumansMember.create("12341337", data)
    assert member.user.username == "12341337_openhumans"
    assert not member.user.has_usable_password()
    assert member.token_expires > timezone.now() + timedelta(hours=9)


@pytest.mark.parametrize(
    ("oh_id", "data"),
    [
        (None, {"access_token": "a", "refresh_token": "r", "expires_in": 1}),
        ("", {"access_token": "a", "refresh_token": "r", "expires_in": 1}),
        ("1" * 17, {"access_token": "a", "refresh_token": "r", "expires_in": 1}),
        ("1234\x005678", {"access_token": "a", "refresh_token": "r", "expires_in": 1}),
        ("12341337", {"access_token": "a", "expires_in": 1}),
        ("12341337", {"access_token": "", "refresh_token": "r", "expires_in": 1}),
        ("12341337", {"access_token": "a", "refresh_token": "r", "expires_in": "soon"}),
        ("12341337", "a-token"),
    ],
    ids=["none", "empty", "too-long", "nul", "no-refresh", "empty-token", "bad-expiry", "str"],
)
def test_create_refuses_bad_input_and_leaves_nothing_behind(django_user_model, oh_id, data):
    with pytest.raises(InvalidArgumentError):
        OpenHumansMember.create(oh_id, data)
    assert not OpenHumansMember.objects.exists()
    assert not django_user_model.objects.exists()


def test_tokens_have_no_length_limit(db):
    long = "x" * 2000
    OpenHumansMember.create(
        "12341337", {"access_token": long, "refresh_token": long, "expires_in": 1}
    )
    assert OpenHumansMember.objects.get().access_token == long


def test_make_unique_username(django_user_model, db):
    assert make_unique_username("bob") == "bob"
    django_user_model.objects.create(username="bob")
    django_user_model.objects.create(username="bob2")
    assert make_unique_username("bob") == "bob3"


def test_get_auth_url_is_the_login_view():
    assert OpenHumansMember.get_auth_url() == "/openhumans/login/"


def test_get_create_member_creates_then_updates(sandbox, db):
    pmid = sandbox.create_member(username="carol")["project_member_id"]
    member = OpenHumansMember.get_create_member(sandbox.issue_tokens(pmid))
    assert member.oh_id == pmid
    OpenHumansMember.objects.filter(pk=pmid).update(oh_deauth=True)
    again = OpenHumansMember.get_create_member(sandbox.issue_tokens(pmid))
    assert again.user_id == member.user_id and not again.oh_deauth
    assert OpenHumansMember.objects.count() == 1


def test_oh_code_to_member(sandbox, db):
    pmid = sandbox.create_member(username="dave")["project_member_id"]
    redirect = sandbox.authorize(pmid, redirect_uri="http://testserver/openhumans/complete")
    code = redirect.split("code=")[1].split("&")[0]
    member = OpenHumansMember.oh_code_to_member(code=code)
    assert member.oh_id == pmid
    with pytest.raises(OpenHumansAPIResponseError):
        OpenHumansMember.oh_code_to_member(code=code)  # single use
    with pytest.raises(ValueError):
        OpenHumansMember.oh_code_to_member(code="")


# -- files and messages ----------------------------------------------------------------------


def test_list_files_has_the_documented_shape(member_factory, sandbox):
    member = member_factory()
    (file_id,) = sandbox.add_files(member.oh_id, basename="my_file.json", metadata=METADATA)
    (listed,) = member.list_files()
    assert listed["id"] == file_id
    assert listed["basename"] == "my_file.json"
    assert listed["metadata"] == METADATA
    assert {"created", "download_url", "source"} <= set(listed)


def test_list_files_past_one_page(member_factory, sandbox):
    member = member_factory()
    sandbox.add_files(member.oh_id, count=120)
    ids = [f["id"] for f in member.list_files()]
    assert len(ids) == len(set(ids)) == 120


def test_upload_text_stream_as_documented(member_factory, sandbox):
    member = member_factory()
    member.upload(io.StringIO('{"a": "é"}'), "example.json", metadata=METADATA)
    (stored,) = sandbox.files(member.oh_id)
    assert stored["basename"] == "example.json"
    assert stored["metadata"] == METADATA


def test_upload_binary_stream(member_factory, sandbox, tmp_path):
    member = member_factory()
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * 100)
    with path.open("rb") as f:
        result = member.upload(f, "blob.bin", METADATA, file_identifier="blob")
    assert result.size == 25600
    assert [f["basename"] for f in member.list_files()] == ["blob.bin"]


def test_delete_single_file_by_id(member_factory, sandbox):
    member = member_factory()
    first, second = sandbox.add_files(member.oh_id, count=2)
    assert member.delete_single_file(file_id=first) == [first]
    assert [f["id"] for f in member.list_files()] == [second]


def test_delete_single_file_by_basename_deletes_every_file_of_that_name(member_factory, sandbox):
    member = member_factory()
    sandbox.add_files(member.oh_id, count=2, basename="same.csv")
    (other,) = sandbox.add_files(member.oh_id, basename="other.csv")
    assert len(member.delete_single_file(file_basename="same.csv")) == 2
    assert [f["id"] for f in member.list_files()] == [other]


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"file_id": 1, "file_basename": "a.csv"}, {"file_id": "a.csv"}],
    ids=["neither", "both", "basename-as-id"],
)
def test_delete_single_file_refuses_bad_arguments(member_factory, sandbox, kwargs):
    member = member_factory()
    before = sandbox.request_log()["counts"]
    with pytest.raises(InvalidArgumentError):
        member.delete_single_file(**kwargs)
    assert sandbox.request_log()["counts"] == before


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda m: m.delete_single_file(file_id=10**30), "file_id"),
        (lambda m: m.delete_single_file(file_id=-1), "file_id"),
        (lambda m: m.delete_single_file(file_id=1.5), "file_id"),
        (lambda m: m.delete_single_file(file_basename=5), "file_basename"),
        (lambda m: m.message(5, "body"), "subject"),
        (lambda m: m.message("subject", None), "message"),
        (lambda m: m.upload(io.StringIO("x"), "a.txt", {"description": "no tags"}), "metadata"),
        (lambda m: m.upload(io.StringIO("x"), "a/b.txt", METADATA), "filename"),
        (lambda m: m.upload(io.BytesIO(b""), "empty.txt", METADATA), "stream"),
    ],
    ids=[
        "huge-id",
        "negative-id",
        "float-id",
        "int-basename",
        "int-subject",
        "no-message",
        "no-tags",
        "slash",
        "empty",
    ],
)
def test_bad_arguments_are_refused_before_any_request(member_factory, sandbox, call, argument):
    # Even a token due for a refresh is not refreshed for a call that cannot succeed.
    member = member_factory()
    expire(member, sandbox)
    member.refresh_from_db()
    before = sandbox.request_log()["counts"]
    with pytest.raises(InvalidArgumentError) as info:
        call(member)
    assert info.value.argument == argument
    assert sandbox.request_log()["counts"] == before
    assert not OpenHumansMember.objects.get().oh_deauth


def test_delete_all_files(member_factory, sandbox):
    member = member_factory()
    sandbox.add_files(member.oh_id, count=3)
    assert len(member.delete_all_files()) == 3
    assert member.list_files() == []


def test_message_reaches_the_inbox(member_factory, sandbox):
    member = member_factory()
    member.message("Hello", "Your data is ready.")
    (mail,) = sandbox.inbox()
    assert mail["project_member_id"] == member.oh_id
    assert mail["message"] == "Your data is ready."
    assert "Hello" in mail["subject"]


def test_deauth_removes_the_member_on_open_humans(member_factory, sandbox):
    member = member_factory()
    member.deauth()
    assert OpenHumansMember.objects.get().oh_deauth
    assert api_requests(sandbox, "remove-members/") == 1
    with pytest.raises(MemberDeauthorizedError):
        member.list_files()


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.get_access_token(),
        lambda m: m.list_files(),
        lambda m: m.upload(b"x", "a.txt", METADATA),
        lambda m: m.delete_single_file(file_id=1),
        lambda m: m.delete_all_files(),
        lambda m: m.message("s", "m"),
        lambda m: m.deauth(),
        lambda m: m.refresh_tokens(),
    ],
    ids=["token", "list", "upload", "delete", "delete-all", "message", "deauth", "refresh"],
)
def test_a_deauthorized_member_fails_fast_without_a_request(member_factory, sandbox, call):
    member = member_factory()
    expire(member, sandbox)  # even a token due for a refresh is not refreshed
    OpenHumansMember.objects.update(oh_deauth=True)
    before = sandbox.request_log()["counts"]
    with pytest.raises(MemberDeauthorizedError, match=member.oh_id):
        call(member)  # a stale instance: oh_deauth is read from the database
    assert sandbox.request_log()["counts"] == before


# -- tokens ----------------------------------------------------------------------------------


def test_fresh_token_is_returned_without_a_refresh(member_factory, sandbox):
    member = member_factory()
    assert member.get_access_token() == member.access_token
    assert token_requests(sandbox) == 0


def test_expired_token_is_refreshed_and_stored(member_factory, sandbox):
    member = member_factory()
    old = member.access_token
    expire(member, sandbox)
    member.refresh_from_db()
    token = member.get_access_token()
    assert token != old
    assert OpenHumansMember.objects.get().access_token == token
    assert token_requests(sandbox) == 1
    assert member.list_files() == []


def test_token_expiring_within_60_seconds_is_refreshed(member_factory, sandbox):
    member = member_factory()
    OpenHumansMember.objects.filter(pk=member.pk).update(
        token_expires=timezone.now() + timedelta(seconds=30)
    )
    member.get_access_token()
    assert token_requests(sandbox) == 1


def test_a_token_killed_early_is_refreshed_once_and_the_call_succeeds(member_factory, sandbox):
    member = member_factory()
    sandbox.expire_access_tokens(member.oh_id)  # our row still thinks it is fresh
    assert member.list_files() == []
    assert token_requests(sandbox) == 1


def test_a_stale_instance_never_returns_a_rotated_token(member_factory, sandbox):
    member = member_factory()
    other = OpenHumansMember.objects.get(pk=member.pk)
    other.refresh_tokens()
    assert member.get_access_token() == other.access_token
    assert token_requests(sandbox) == 1


def test_refused_refresh_needs_reauthorization_without_a_master_token(member_factory, sandbox):
    # Issue 10: a refused refresh token may be one rotated by a refresh whose answer was
    # lost; without the master token we cannot tell, so the member is not marked as left.
    member = member_factory()
    sandbox.leave(member.oh_id)
    expire(member, sandbox)
    with pytest.raises(MemberDeauthorizedError):
        member.get_access_token()
    stored = OpenHumansMember.objects.get()
    assert stored.needs_reauthorization and not stored.oh_deauth
    with pytest.raises(MemberDeauthorizedError):
        member.get_access_token()
    assert token_requests(sandbox) == 1


def test_refused_refresh_of_a_member_who_left_marks_them_deauthorized(
    member_factory, sandbox, settings
):
    settings.OPENHUMANS_MASTER_TOKEN = sandbox.master_token
    member = member_factory()
    sandbox.leave(member.oh_id)
    expire(member, sandbox)
    with pytest.raises(MemberDeauthorizedError):
        member.get_access_token()
    stored = OpenHumansMember.objects.get()
    assert stored.oh_deauth and not stored.needs_reauthorization
    with pytest.raises(MemberDeauthorizedError):
        member.get_access_token()
    assert token_requests(sandbox) == 1


def test_explicit_client_credentials_are_used(member_factory, sandbox):
    member = member_factory()
    expire(member, sandbox)
    with pytest.raises(OpenHumansError):
        member.get_access_token(client_id="wrong", client_secret="wrong")
    assert member.get_access_token(client_id=sandbox.client_id, client_secret=sandbox.client_secret)


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_callers_cause_one_refresh(member_factory, sandbox):
    member = member_factory()
    expire(member, sandbox)
    barrier = threading.Barrier(8)
    tokens, errors = [], []

    def call():
        try:
            barrier.wait()
            tokens.append(OpenHumansMember.objects.get(pk=member.pk).get_access_token())
        except Exception as err:  # reported below
            errors.append(err)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(set(tokens)) == 1 and len(tokens) == 8
    assert token_requests(sandbox) == 1
    assert OpenHumansMember.objects.get().access_token == tokens[0]


# -- deauth on delete ------------------------------------------------------------------------


def test_deleting_a_member_tells_open_humans_after_commit(
    member_factory, sandbox, django_capture_on_commit_callbacks
):
    member = member_factory()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        member.delete()
        assert api_requests(sandbox, "remove-members/") == 0  # nothing inside the transaction
    assert len(callbacks) == 1
    assert api_requests(sandbox, "remove-members/") == 1
    assert not PendingDeauthNotice.objects.exists()


def test_deleting_the_user_also_tells_open_humans(
    member_factory, sandbox, django_capture_on_commit_callbacks
):
    member = member_factory()
    with django_capture_on_commit_callbacks(execute=True):
        member.user.delete()
    assert api_requests(sandbox, "remove-members/") == 1


def test_no_notice_when_deauth_on_delete_is_off(
    member_factory, sandbox, settings, django_capture_on_commit_callbacks
):
    settings.OPENHUMANS_DEAUTH_ON_DELETE = False
    member = member_factory()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        member.delete()
    assert callbacks == [] and not PendingDeauthNotice.objects.exists()


def test_outage_keeps_the_notice_and_the_command_retries_it(
    member_factory, sandbox, django_capture_on_commit_callbacks
):
    member = member_factory()
    sandbox.set_fault(
        endpoint="/api/direct-sharing/project/remove-members/", error_rate=1.0, status=503
    )
    with django_capture_on_commit_callbacks(execute=True):
        member.user.delete()  # never blocked by the outage
    assert not OpenHumansMember.objects.exists()
    assert not get_user_model().objects.exists()
    notice = PendingDeauthNotice.objects.get()
    assert notice.project_member_id == member.oh_id and notice.attempts == 1
    assert member.access_token not in notice.last_error
    assert member.access_token not in repr(notice) and member.refresh_token not in str(notice)

    out = io.StringIO()
    # Issue 10: the command exits non-zero while a notice stays pending.
    with pytest.raises(CommandError, match="1 deauthorization notice"):
        call_command("openhumans_retry_deauth", stdout=out, stderr=io.StringIO())
    assert "0 sent, 1 failed, 1 still pending" in out.getvalue()
    assert PendingDeauthNotice.objects.get().attempts == 2

    sandbox.clear_faults()
    call_command("openhumans_retry_deauth", stdout=out)
    assert "1 sent, 0 failed, 0 still pending" in out.getvalue()
    assert not PendingDeauthNotice.objects.exists()


def test_a_queued_notice_with_an_expired_token_refreshes_first(
    member_factory, sandbox, settings, django_capture_on_commit_callbacks
):
    member = member_factory()
    expire(member, sandbox)
    member.refresh_from_db()
    sandbox.set_fault(endpoint="/oauth2/token/", error_rate=1.0, status=503)
    with django_capture_on_commit_callbacks(execute=True):
        member.delete()
    assert PendingDeauthNotice.objects.get().attempts == 1
    sandbox.clear_faults()
    call_command("openhumans_retry_deauth", stdout=io.StringIO())
    assert not PendingDeauthNotice.objects.exists()
    assert api_requests(sandbox, "remove-members/") == 1


def test_two_senders_of_one_notice_never_lose_it(member_factory, sandbox):
    # A cron run and the after-commit send may hold the same notice. The first refreshes
    # (rotating the refresh token, spec §1.4) and fails. The second, holding the old pair in
    # memory, reads the row under lock (issue 10): it sends with the new pair, never drops.
    member = member_factory()
    pmid = member.oh_id
    expire(member, sandbox)
    member.refresh_from_db()
    member.delete()  # inside the test transaction: queued, not sent
    first = PendingDeauthNotice.objects.get()
    second = PendingDeauthNotice.objects.get()
    sandbox.set_fault(
        endpoint="/api/direct-sharing/project/remove-members/", error_rate=1.0, status=503
    )
    assert not first.send()
    kept = PendingDeauthNotice.objects.get()
    # The rotated pair is stored; the second still holds the dead one in memory.
    assert kept.refresh_token != member.refresh_token == second.refresh_token
    sandbox.clear_faults()
    assert second.send()
    assert not PendingDeauthNotice.objects.exists()
    assert api_requests(sandbox, "remove-members/") == 2  # the failed one, then the real one
    assert token_requests(sandbox) == 1  # the second did not refresh the dead pair again
    assert sandbox.member(pmid)["active"] is False


def test_a_notice_deleted_meanwhile_is_not_an_error(member_factory, sandbox):
    member = member_factory()
    expire(member, sandbox)
    member.refresh_from_db()
    member.delete()
    notice = PendingDeauthNotice.objects.get()
    PendingDeauthNotice.objects.all().delete()  # sent by another process
    sandbox.set_fault(
        endpoint="/api/direct-sharing/project/remove-members/", error_rate=1.0, status=503
    )
    assert not notice.send()  # refreshed, then failed: nothing to record it on, no crash
    assert not PendingDeauthNotice.objects.exists()


def test_a_notice_rolled_back_with_its_delete_is_not_sent(
    member_factory, sandbox, django_capture_on_commit_callbacks
):
    member = member_factory()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                member.delete()
                raise RuntimeError("abort")
        except RuntimeError:
            pass
    assert callbacks == []
    assert OpenHumansMember.objects.exists() and not PendingDeauthNotice.objects.exists()
