"""The JSON API for browser uploads (openhumans.direct_upload), against the sandbox.

The test client plays the page's two calls to our server; httpx plays the browser's PUT to
the signed storage URL.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.test import Client
from django.utils import timezone

from openhumans.models import DirectUpload

from .helpers import api_requests

START, COMPLETE, CANCEL = (
    "/openhumans/upload/start/",
    "/openhumans/upload/complete/",
    "/openhumans/upload/cancel/",
)


@pytest.fixture
def member_client(client, member_factory):
    member = member_factory()
    client.force_login(member.user)
    client.member = member
    return client


def post(client: Client, url: str, body: Any, **extra: Any) -> Any:
    return client.post(url, json.dumps(body), content_type="application/json", **extra)


def start(
    client: Client, filename: str = "steps.csv", size: int = 5, csrf: str = "", **fields: Any
) -> Any:
    body = {"filename": filename, "size": size, "description": "Steps", "tags": ["a", "b"]}
    headers = {"HTTP_X_CSRFTOKEN": csrf} if csrf else {}
    return post(client, START, {**body, **fields}, **headers)


def put(url: str, content: bytes) -> httpx.Response:
    with httpx.Client(timeout=15.0) as browser:
        return browser.put(url, content=content)


def listed(sandbox: Any, member: Any) -> list[tuple[str, int | None]]:
    return sorted((f["basename"], f["id"]) for f in sandbox.files(member.oh_id))


def test_three_steps_upload_a_file_and_the_token_never_reaches_the_page(member_client, sandbox):
    member = member_client.member
    started = start(member_client, size=5)
    assert started.status_code == 201, started.content
    answer = started.json()
    assert set(answer) == {"upload_id", "url"}
    assert member.access_token not in started.content.decode()
    assert member.refresh_token not in started.content.decode()
    assert listed(sandbox, member) == []  # invisible until completed
    assert put(answer["url"], b"12345").status_code == 200
    done = post(member_client, COMPLETE, {"upload_id": answer["upload_id"]})
    assert done.status_code == 200, done.content
    assert done.json()["size"] == 5
    [f] = sandbox.files(member.oh_id)
    assert f["basename"] == "steps.csv"
    assert f["metadata"] == {"description": "Steps", "tags": ["a", "b"]}
    assert f["id"] == done.json()["file_id"]
    assert not DirectUpload.objects.exists()
    # Completing again: the upload is no longer open.
    again = post(member_client, COMPLETE, {"upload_id": answer["upload_id"]})
    assert again.status_code == 404
    assert again.json()["error"] == "no_such_upload"


def test_a_file_over_the_limit_is_refused_before_open_humans_hears_of_it(
    member_client, sandbox, settings
):
    settings.OPENHUMANS_MAX_UPLOAD_SIZE = 1000
    response = start(member_client, size=1001)
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert "1001 bytes; the limit is 1000 bytes" in response.json()["message"]
    assert response.json()["limit"] == 1000
    assert api_requests(sandbox, "files/upload/direct/") == 0
    assert start(member_client, size=1000).status_code == 201


@pytest.mark.parametrize("limit", [None, 10 * 1024**3])
def test_storage_takes_at_most_5_gib_whatever_the_setting(member_client, sandbox, settings, limit):
    settings.OPENHUMANS_MAX_UPLOAD_SIZE = limit
    for size in (5 * 1024**3 + 1, 10**30):
        response = start(member_client, size=size)
        assert response.status_code == 413
        assert response.json()["limit"] == 5 * 1024**3
    assert api_requests(sandbox, "files/upload/direct/") == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"filename": "a/b.csv"}, "filename"),
        ({"filename": "x\x00.csv"}, "filename"),
        ({"filename": ""}, "filename"),
        ({"filename": "n" * 256}, "filename"),
        ({"size": 0}, "size"),
        ({"size": "lots"}, "size"),
        ({"size": [1]}, "size"),
        ({"description": ""}, "description"),
        ({"description": "d" * 101}, "description"),
        ({"tags": {"a": 1}}, "tags"),
    ],
)
def test_bad_fields_are_a_400_naming_the_field(member_client, sandbox, fields, field):
    response = start(member_client, **fields)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid"
    assert response.json()["message"].startswith(field)
    assert api_requests(sandbox, "files/upload/direct/") == 0


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{nope", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b"[" * 100_000, "application/json", 400),
        (b"filename=a", "text/plain", 415),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_4xx_json(
    member_client, sandbox, body, content_type, status
):
    response = member_client.post(START, body, content_type=content_type)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["message"]


def test_only_a_logged_in_member_may_start(client, db, sandbox, django_user_model):
    anonymous = start(client)
    assert anonymous.status_code == 403
    assert anonymous.json()["error"] == "not_connected"
    client.force_login(django_user_model.objects.create(username="no-member"))
    assert start(client).status_code == 403


def test_a_deauthorized_member_may_not_start(member_client, sandbox):
    member_client.member.oh_deauth = True
    member_client.member.save()
    assert start(member_client).json()["error"] == "not_connected"


def test_get_is_not_allowed_and_answers_json(member_client, sandbox):
    response = member_client.get(START)
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


def test_csrf_is_checked_and_answered_in_json(member_factory, sandbox):
    member = member_factory()
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(member.user)
    refused = start(browser)
    assert refused.status_code == 403
    assert refused.json()["error"] == "csrf_failed"
    browser.get("/openhumans/upload/")  # the page sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    accepted = start(browser, csrf=token)
    assert accepted.status_code == 201, accepted.content


def test_another_members_upload_cannot_be_completed_or_cancelled(
    member_client, member_factory, sandbox
):
    upload_id = start(member_client).json()["upload_id"]
    other = Client()
    other.force_login(member_factory("bob").user)
    assert post(other, COMPLETE, {"upload_id": upload_id}).status_code == 404
    assert post(other, CANCEL, {"upload_id": upload_id}).status_code == 404
    assert post(other, COMPLETE, {"upload_id": "not-a-uuid"}).status_code == 400
    assert DirectUpload.objects.count() == 1


def test_completing_before_the_bytes_arrived_is_refused_and_can_be_retried(member_client, sandbox):
    answer = start(member_client, size=3).json()
    early = post(member_client, COMPLETE, {"upload_id": answer["upload_id"]})
    assert early.status_code == 409
    assert early.json()["error"] == "not_in_storage"
    assert "steps.csv never arrived in storage" in early.json()["message"]
    assert sandbox.files(member_client.member.oh_id) == []
    assert put(answer["url"], b"abc").status_code == 200
    late = post(member_client, COMPLETE, {"upload_id": answer["upload_id"]})
    assert late.status_code == 200
    assert len(sandbox.files(member_client.member.oh_id)) == 1


def test_more_bytes_than_announced_are_deleted_not_kept(member_client, sandbox, settings):
    # The signed URL does not bind the length: the limit is enforced at completion.
    settings.OPENHUMANS_MAX_UPLOAD_SIZE = 10
    answer = start(member_client, size=10).json()
    assert put(answer["url"], b"x" * 5000).status_code == 200
    done = post(member_client, COMPLETE, {"upload_id": answer["upload_id"]})
    assert done.status_code == 400
    assert done.json()["error"] == "size_mismatch"
    assert sandbox.files(member_client.member.oh_id) == []
    assert not DirectUpload.objects.exists()


def test_cancelling_before_any_byte_leaves_nothing(member_client, sandbox):
    answer = start(member_client).json()
    cancelled = post(member_client, CANCEL, {"upload_id": answer["upload_id"]})
    assert cancelled.json() == {"cancelled": True, "removed_file": False}
    assert not DirectUpload.objects.exists()
    assert sandbox.files(member_client.member.oh_id) == []


def test_cancelling_after_the_bytes_arrived_deletes_the_file(member_client, sandbox):
    answer = start(member_client, size=5).json()
    assert put(answer["url"], b"12345").status_code == 200
    cancelled = post(member_client, CANCEL, {"upload_id": answer["upload_id"]})
    assert cancelled.json() == {"cancelled": True, "removed_file": True}
    assert sandbox.files(member_client.member.oh_id) == []
    record = sandbox.store.files
    assert all(f["pmid"] != member_client.member.oh_id for f in record.values())


def test_a_closing_tab_cancels_with_a_form_post(member_factory, sandbox):
    # navigator.sendBeacon(url, FormData) sends the CSRF token as a form field.
    member = member_factory()
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(member.user)
    browser.get("/openhumans/upload/")
    token = browser.cookies["csrftoken"].value
    upload_id = start(browser, csrf=token).json()["upload_id"]
    beacon = browser.post(CANCEL, {"upload_id": upload_id, "csrfmiddlewaretoken": token})
    assert beacon.status_code == 200, beacon.content
    assert not DirectUpload.objects.exists()


def test_two_tabs_with_the_same_filename_both_end_listed(member_client, sandbox):
    first = start(member_client, filename="export.zip", size=3).json()
    second = start(member_client, filename="export.zip", size=4).json()
    assert put(second["url"], b"4444").status_code == 200
    assert put(first["url"], b"333").status_code == 200
    done_second = post(member_client, COMPLETE, {"upload_id": second["upload_id"]}).json()
    done_first = post(member_client, COMPLETE, {"upload_id": first["upload_id"]}).json()
    files = sandbox.files(member_client.member.oh_id)
    assert sorted(f["id"] for f in files) == sorted([done_first["file_id"], done_second["file_id"]])
    assert {f["basename"] for f in files} == {"export.zip"}
    assert (done_first["size"], done_second["size"]) == (3, 4)
    assert not DirectUpload.objects.exists()


def test_too_many_open_uploads_are_refused(member_client, sandbox):
    for _ in range(10):
        assert start(member_client).status_code == 201
    refused = start(member_client)
    assert refused.status_code == 429
    assert refused.json()["error"] == "too_many_uploads"


def test_open_humans_down_is_a_503_json_and_records_nothing(member_client, sandbox):
    sandbox.set_fault("/api/direct-sharing/project/files/upload/direct/", drop_connection=True)
    response = start(member_client)
    assert response.status_code == 503
    assert response.json()["error"] == "open_humans_unavailable"
    assert not DirectUpload.objects.exists()


def test_abandoned_uploads_are_cleaned_up_on_the_next_start(member_client, sandbox):
    sent = start(member_client, filename="sent.csv", size=2).json()
    assert put(sent["url"], b"ok").status_code == 200  # the tab closed before completing
    start(member_client, filename="never.csv")  # the tab closed before the PUT
    DirectUpload.objects.update(created=timezone.now() - timedelta(hours=8))
    fresh = start(member_client, filename="new.csv")
    assert fresh.status_code == 201
    assert list(DirectUpload.objects.values_list("filename", flat=True)) == ["new.csv"]
    assert sandbox.files(member_client.member.oh_id) == []
    assert not any(
        f["pmid"] == member_client.member.oh_id and f["basename"] == "sent.csv"
        for f in sandbox.store.files.values()
    )


def test_the_cleanup_command_removes_abandoned_uploads_and_keeps_recent_ones(
    member_client, sandbox
):
    from django.core.management import call_command

    abandoned = start(member_client, filename="old.csv", size=2).json()
    assert put(abandoned["url"], b"ok").status_code == 200
    start(member_client, filename="recent.csv")
    old = DirectUpload.objects.filter(filename="old.csv")
    old.update(created=timezone.now() - timedelta(hours=8))
    out = io.StringIO()
    call_command("openhumans_clean_uploads", stdout=out)
    assert out.getvalue().strip() == "1 cleaned up, 0 left for the next run"
    assert list(DirectUpload.objects.values_list("filename", flat=True)) == ["recent.csv"]
    assert not any(f["basename"] == "old.csv" for f in sandbox.store.files.values())


def test_the_cleanup_command_keeps_uploads_while_open_humans_is_down(member_client, sandbox):
    from django.core.management import call_command

    start(member_client)
    sandbox.set_fault("/api/", drop_connection=True)
    out, err = io.StringIO(), io.StringIO()
    call_command("openhumans_clean_uploads", "--older-than", "0", stdout=out, stderr=err)
    assert out.getvalue().strip() == "0 cleaned up, 1 left for the next run"
    assert "run again later" in err.getvalue()
    assert DirectUpload.objects.count() == 1
    sandbox.clear_faults()
    call_command("openhumans_clean_uploads", "--older-than", "0", stdout=out)
    assert not DirectUpload.objects.exists()


def test_the_upload_page_is_enhanced_by_the_shipped_script(member_client, sandbox):
    from django.contrib.staticfiles import finders

    page = member_client.get("/openhumans/upload/").content.decode()
    assert 'data-start-url="/openhumans/upload/start/"' in page
    assert 'data-complete-url="/openhumans/upload/complete/"' in page
    assert 'data-cancel-url="/openhumans/upload/cancel/"' in page
    assert 'src="/static/openhumans/direct-upload.js"' in page
    script = finders.find("openhumans/direct-upload.js")
    assert script is not None
    with open(script, encoding="utf-8") as f:
        source = f.read()
    assert "form[data-openhumans-upload]" in source  # it enhances the form the page ships


def test_an_upload_open_humans_already_expunged_is_dropped(member_client, sandbox):
    # Open Humans removes uncompleted records after 6 h (spec §1.6), and then answers a
    # completion of that file id with a 500 (spec §2.6 step 3); the sandbox with a 400.
    from django.core.management import call_command

    start(member_client, filename="gone.csv")
    upload = DirectUpload.objects.get()
    sandbox.store.delete_file(upload.file_id)
    DirectUpload.objects.update(created=timezone.now() - timedelta(hours=8))
    out = io.StringIO()
    call_command("openhumans_clean_uploads", stdout=out)
    assert out.getvalue().strip() == "1 cleaned up, 0 left for the next run"
    assert not DirectUpload.objects.exists()


def test_cancelling_an_upload_open_humans_already_expunged_succeeds(member_client, sandbox):
    upload_id = start(member_client).json()["upload_id"]
    sandbox.store.delete_file(DirectUpload.objects.get().file_id)
    cancelled = post(member_client, CANCEL, {"upload_id": upload_id})
    assert cancelled.json() == {"cancelled": True, "removed_file": False}
    assert not DirectUpload.objects.exists()
