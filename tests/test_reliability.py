"""Regression tests for issue 10: no member lost, no notice dropped, under faults.

Each test names the bug it guards against. The long runs (gunicorn, the fault workload) are
in ``test_reliability_load.py`` behind the ``reliability`` marker.
"""

from __future__ import annotations

import io
import time
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from openhumans import client as oh_client
from openhumans.exceptions import (
    MemberDeauthorizedError,
    OpenHumansConnectionError,
    ReauthorizationRequiredError,
)
from openhumans.models import OpenHumansMember, PendingDeauthNotice

from .helpers import api_requests, log_in, token_requests

pytestmark = pytest.mark.django_db

TOKEN_ENDPOINT = "/oauth2/token/"


def expire_locally(member):
    OpenHumansMember.objects.filter(pk=member.pk).update(
        token_expires=timezone.now() - timedelta(seconds=5)
    )


def lose_a_refresh_answer(member, sandbox, settings):
    """A refresh that Open Humans performs but whose answer never reaches us (spec §1.4)."""
    settings.OPENHUMANS_TOKEN_TIMEOUT = 0.5
    sandbox.set_fault(endpoint=TOKEN_ENDPOINT, latency_ms=1500, times=1)
    expire_locally(member)
    with pytest.raises(OpenHumansConnectionError):
        member.get_access_token()
    deadline = time.monotonic() + 10
    while token_requests(sandbox) < 1 and time.monotonic() < deadline:
        time.sleep(0.1)  # the server finishes the rotation after we gave up
    assert token_requests(sandbox) == 1
    settings.OPENHUMANS_TOKEN_TIMEOUT = 20


def test_a_lost_refresh_answer_does_not_mark_the_member_as_left(member_factory, sandbox, settings):
    # Bug: the next refresh's invalid_grant marked the member oh_deauth (30 of 30 on PostgreSQL).
    member = member_factory()
    lose_a_refresh_answer(member, sandbox, settings)
    stored = OpenHumansMember.objects.get()
    assert not stored.oh_deauth and not stored.needs_reauthorization  # a timeout marks nothing
    with pytest.raises(ReauthorizationRequiredError):
        member.list_files()
    stored = OpenHumansMember.objects.get()
    assert stored.needs_reauthorization and not stored.oh_deauth
    assert sandbox.member(member.oh_id)["active"]  # they are still in the project


def test_with_the_master_token_a_member_with_lost_tokens_stays_usable(
    member_factory, sandbox, settings
):
    settings.OPENHUMANS_MASTER_TOKEN = sandbox.master_token
    member = member_factory()
    sandbox.add_files(member.oh_id, count=2)
    lose_a_refresh_answer(member, sandbox, settings)
    assert len(member.list_files()) == 2  # served with the master token
    stored = OpenHumansMember.objects.get()
    assert stored.needs_reauthorization and not stored.oh_deauth
    result = member.upload(b"hello", "later.txt", {"description": "d", "tags": ["t"]})
    assert result.id in [f["id"] for f in sandbox.files(member.oh_id)]
    member.message("Hello", "still here")
    assert sandbox.inbox(member.oh_id)
    assert member.delete_single_file(file_id=result.id) == [result.id]


def test_logging_in_again_clears_needs_reauthorization(member_factory, sandbox, client):
    member = member_factory()
    OpenHumansMember.objects.update(needs_reauthorization=True)
    assert log_in(client, sandbox, member.oh_id).status_code == 302
    stored = OpenHumansMember.objects.get()
    assert not stored.needs_reauthorization and not stored.oh_deauth
    assert stored.authorized_at is not None
    assert client.get("/openhumans/list/").status_code == 200


def rotate_elsewhere(member, sandbox):
    """Another request refreshes the member's pair; return the instance it had before."""
    stale = OpenHumansMember.objects.get(pk=member.pk)
    OpenHumansMember.objects.get(pk=member.pk).refresh_tokens()
    assert OpenHumansMember.objects.get().refresh_token != stale.refresh_token
    return stale


def test_deleting_a_stale_instance_sends_the_notice_with_the_current_pair(
    member_factory, sandbox, django_capture_on_commit_callbacks
):
    # Bug: the notice copied the deleted instance's (rotated, dead) tokens; the 401 was
    # taken for "already gone" and the notice dropped: 30 of 30 members stayed on Open Humans.
    member = member_factory()
    pmid = member.oh_id
    stale = rotate_elsewhere(member, sandbox)
    with django_capture_on_commit_callbacks(execute=True):
        stale.delete()
    assert not PendingDeauthNotice.objects.exists()
    assert sandbox.member(pmid)["active"] is False
    assert api_requests(sandbox, "remove-members/") == 1


def test_a_notice_refused_with_401_is_sent_again_after_a_refresh(member_factory, sandbox):
    member = member_factory()
    pmid = member.oh_id
    member.delete()  # inside the test transaction: queued, not sent
    sandbox.expire_access_tokens(pmid)  # its access token is dead, its refresh token alive
    assert PendingDeauthNotice.objects.get().send()
    assert sandbox.member(pmid)["active"] is False
    assert token_requests(sandbox) == 1


def notice_with_dead_tokens(member_factory, sandbox):
    member = member_factory()
    pmid = member.oh_id
    member.delete()
    notice = PendingDeauthNotice.objects.get()
    # The pair died on Open Humans' side while the member stays in the project.
    oh_client.refresh(
        refresh_token=notice.refresh_token,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        base_url=sandbox.base_url,
    )
    return pmid, notice


def test_a_notice_the_tokens_cannot_deliver_is_kept_and_the_command_fails(member_factory, sandbox):
    pmid, notice = notice_with_dead_tokens(member_factory, sandbox)
    assert not notice.send()
    kept = PendingDeauthNotice.objects.get()
    assert kept.gave_up and kept.attempts == 1
    assert "no OPENHUMANS_MASTER_TOKEN is set" in kept.last_error
    assert sandbox.member(pmid)["active"]  # nothing was claimed that did not happen
    with pytest.raises(CommandError, match="1 given up"):
        call_command("openhumans_retry_deauth", stdout=io.StringIO())
    assert PendingDeauthNotice.objects.get().gave_up


def test_the_master_token_delivers_a_notice_the_tokens_cannot(member_factory, sandbox, settings):
    pmid, notice = notice_with_dead_tokens(member_factory, sandbox)
    settings.OPENHUMANS_MASTER_TOKEN = sandbox.master_token
    assert notice.send()
    assert not PendingDeauthNotice.objects.exists()
    assert sandbox.member(pmid)["active"] is False


def test_the_master_token_knows_a_member_who_already_left(member_factory, sandbox, settings):
    pmid, notice = notice_with_dead_tokens(member_factory, sandbox)
    sandbox.leave(pmid)
    settings.OPENHUMANS_MASTER_TOKEN = sandbox.master_token
    assert notice.send()  # already gone: nothing owed
    assert not PendingDeauthNotice.objects.exists()


def test_a_member_who_left_is_still_refused(member_factory, sandbox, settings):
    settings.OPENHUMANS_MASTER_TOKEN = sandbox.master_token
    member = member_factory()
    sandbox.leave(member.oh_id)
    with pytest.raises(MemberDeauthorizedError) as info:
        member.list_files()
    assert not isinstance(info.value, ReauthorizationRequiredError)
    assert OpenHumansMember.objects.get().oh_deauth


# -- SQLite ----------------------------------------------------------------------------------


def test_sqlite_check_says_what_to_set():
    from openhumans.checks import check_sqlite, sqlite_warnings

    assert check_sqlite() == []  # the test project's SQLite can be made safe
    sqlite = {"ENGINE": "django.db.backends.sqlite3", "NAME": "x.sqlite3"}
    databases = {
        "default": {**sqlite, "OPTIONS": {"timeout": 5}},
        "other": {**sqlite, "ATOMIC_REQUESTS": True},
        "fine": {**sqlite, "ATOMIC_REQUESTS": True, "OPTIONS": {"transaction_mode": "IMMEDIATE"}},
    }
    messages = sqlite_warnings(databases)
    assert [m.id for m in messages] == ["openhumans.W005", "openhumans.W005"]
    assert "'default'" in messages[0].msg and "timeout (5 s) is shorter" in messages[0].msg
    assert "ATOMIC_REQUESTS" in messages[1].msg
    assert '"transaction_mode": "IMMEDIATE", "timeout": 30' in messages[0].hint


def test_sqlite_connections_wait_for_the_write_lock():
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        (milliseconds,) = cursor.fetchone()
    assert milliseconds == 30_000  # OPENHUMANS_TOKEN_TIMEOUT (20 s) + 10 s


# -- error reports ---------------------------------------------------------------------------


class Boom(Exception):
    pass


def report_of(call, rf, settings, reporter_filter):
    """Django's technical 500 HTML (as mailed) for the exception ``call`` raises.

    The traceback starts in this frame, so the test's own locals are not in it.
    """
    import sys

    from django.utils.module_loading import import_string
    from django.views.debug import ExceptionReporter

    request = rf.get("/openhumans/list/")
    # What DEFAULT_EXCEPTION_REPORTER_FILTER names (Django caches that setting's instance).
    request.exception_reporter_filter = import_string(reporter_filter)()
    try:
        call()
    except Exception:
        return ExceptionReporter(request, *sys.exc_info(), is_email=True).get_traceback_html()
    raise AssertionError("no exception")


@pytest.mark.parametrize(
    "reporter_filter",
    [
        "django.views.debug.SafeExceptionReporterFilter",
        "openhumans.debug.TokenSafeExceptionReporterFilter",
    ],
)
def test_error_reports_never_show_a_token(member_factory, sandbox, settings, rf, reporter_filter):
    # Bug: live tokens appeared in the frame locals of 500 error reports (the HTML error mail).
    member = member_factory()
    secrets = {member.access_token, member.refresh_token, sandbox.client_secret}
    expire_locally(member)
    sandbox.set_fault(endpoint=TOKEN_ENDPOINT, drop_connection=True, times=1)
    html = report_of(member.get_access_token, rf, settings, reporter_filter)
    assert "OpenHumansConnectionError" in html
    assert "_token_request" in html and "Requester" in html  # the deep frames are there
    for secret in secrets:
        assert secret not in html


def test_the_token_safe_filter_cleans_frames_nobody_marked(rf, settings):
    settings.DEBUG = True  # the DEBUG page: Django's own filter is off there
    token = "LiveToken" + "x" * 21

    def unmarked_caller(headers, url):
        raise Boom("unexpected")

    def call():
        unmarked_caller(
            [(b"Authorization", f"Bearer {token}".encode())],
            f"https://x/api/?access_token={token}",
        )

    html = report_of(call, rf, settings, "openhumans.debug.TokenSafeExceptionReporterFilter")
    assert "unmarked_caller" in html
    assert token not in html


# -- uploads refused before they are read ----------------------------------------------------


class CountingInput:
    """A request body that counts what the server read of it."""

    def __init__(self, data):
        import io

        self.stream = io.BytesIO(data)
        self.read_bytes = 0

    def read(self, size=-1):
        chunk = self.stream.read(size)
        self.read_bytes += len(chunk)
        return chunk

    def readline(self, size=-1):
        line = self.stream.readline(size)
        self.read_bytes += len(line)
        return line


def multipart(size, boundary="BoUnDaRy"):
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="description"\r\n\r\nd\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="data_file"; '
        'filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    return head + b"x" * size + f"\r\n--{boundary}--\r\n".encode(), boundary


def post_upload(rf, member, body, boundary, content_length):
    from django.contrib.messages.storage.fallback import FallbackStorage
    from django.contrib.sessions.backends.db import SessionStore

    from openhumans.views import UploadFile

    stream = CountingInput(body)
    request = rf.generic(
        "POST",
        "/openhumans/upload/",
        CONTENT_TYPE=f"multipart/form-data; boundary={boundary}",
        CONTENT_LENGTH=str(content_length),
        **{"wsgi.input": stream},
    )
    request.user = member.user
    request.session = SessionStore()
    request._messages = FallbackStorage(request)
    request._dont_enforce_csrf_checks = True
    return UploadFile.as_view()(request), stream


def test_an_upload_over_the_limit_is_refused_unread(
    member_factory, sandbox, settings, rf, tmp_path
):
    # Bug: the whole body went to a temporary file before the size check (1 GiB on disk for
    # a 10 MiB limit, from any logged-in member).
    settings.OPENHUMANS_MAX_UPLOAD_SIZE = 10_000
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # every file part would go to disk
    member = member_factory()
    body, boundary = multipart(5_000_000)
    response, stream = post_upload(rf, member, body, boundary, len(body))
    assert response.status_code == 413
    assert b"too large" in response.content
    assert stream.read_bytes == 0
    assert list(tmp_path.iterdir()) == []
    assert api_requests(sandbox, "files/upload/direct/") == 0


def test_a_file_part_is_cut_off_at_the_limit(member_factory, sandbox, settings, rf, tmp_path):
    # Within the form's allowance by Content-Length, but the file part itself is too big.
    settings.OPENHUMANS_MAX_UPLOAD_SIZE = 10_000
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    member = member_factory()
    body, boundary = multipart(60_000)
    response, stream = post_upload(rf, member, body, boundary, len(body))
    assert response.status_code == 413
    assert stream.read_bytes < 10_000 + 2 * 65_536  # stopped within a chunk of the limit
    assert api_requests(sandbox, "files/upload/direct/") == 0
    body, boundary = multipart(9_000)
    response, _ = post_upload(rf, member, body, boundary, len(body))
    assert response.status_code == 302  # under the limit: uploaded
    assert [f["basename"] for f in sandbox.files(member.oh_id)] == ["big.bin"]


# -- SameSite=Strict session cookies ---------------------------------------------------------


def test_a_strict_session_cookie_still_completes_a_login(client, sandbox, settings, db):
    # The return from Open Humans is cross-site: the browser withholds a Strict cookie, so the
    # state seemed unknown (a 400). We answer with a page that reloads complete same-site.
    import html
    import re

    from .helpers import authorize, start_login

    settings.SESSION_COOKIE_SAMESITE = "Strict"
    pmid = sandbox.create_member(username="strict")["project_member_id"]
    complete_url = authorize(sandbox, pmid, start_login(client))
    jar = client.cookies
    client.cookies = type(jar)()  # the cross-site arrival: no Strict cookie
    bounce = client.get(complete_url)
    assert bounce.status_code == 200
    assert not bounce.cookies  # nothing stored, no cookie that would replace the session
    assert bounce["Referrer-Policy"] == "no-referrer"
    target = html.unescape(re.search(rb'url=([^"]+)"', bounce.content).group(1).decode())
    assert target.startswith("/openhumans/complete?")
    client.cookies = jar  # our own page's navigation is same-site: the cookie is sent
    done = client.get(target)
    assert done.status_code == 302
    assert OpenHumansMember.objects.get(pk=pmid).user_id == int(client.session["_auth_user_id"])


def test_a_strict_bounce_happens_once(client, sandbox, settings, db):
    settings.SESSION_COOKIE_SAMESITE = "Strict"
    response = client.get("/openhumans/complete", {"state": "x", "openhumans_same_site": "1"})
    assert response.status_code == 400  # still no session: a plain "not valid" page


def test_a_hundred_members_deleted_during_an_outage_are_each_told_once(
    member_factory, sandbox, django_capture_on_commit_callbacks
):
    """Issue 12's outage test: every request fails, 100 members are deleted here; all stay
    deleted locally with 100 notices pending; Open Humans back, one delivery run tells it
    about each member exactly once."""
    members = [member_factory(f"m{i}") for i in range(100)]
    pmids = {m.oh_id for m in members}
    sandbox.set_fault(endpoint="/", error_rate=1.0, status=503)
    for member in members:
        with django_capture_on_commit_callbacks(execute=True):  # the send after commit fails
            member.delete()
    assert not OpenHumansMember.objects.exists()
    assert set(PendingDeauthNotice.objects.values_list("project_member_id", flat=True)) == pmids
    assert all(sandbox.member(pmid)["active"] for pmid in pmids)
    with pytest.raises(CommandError):  # notices still pending: a non-zero exit
        call_command("openhumans_retry_deauth", stdout=io.StringIO())
    assert PendingDeauthNotice.objects.count() == 100

    sandbox.clear_faults()
    sandbox.clear_request_log()
    call_command("openhumans_retry_deauth", stdout=io.StringIO())
    assert not PendingDeauthNotice.objects.exists()
    assert not any(sandbox.member(pmid)["active"] for pmid in pmids)
    assert api_requests(sandbox, "remove-members/") == 100  # once each
