"""The views through Django's test client, logging in through the sandbox over real sockets."""

from __future__ import annotations

import threading
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.utils import timezone

from openhumans.models import OpenHumansMember
from openhumans.oauth import MAX_STATES

from .helpers import (
    REDIRECT_URI,
    api_requests,
    authorize,
    log_in,
    requires_postgres,
    start_login,
    token_requests,
)

pytestmark = pytest.mark.django_db

METADATA = {"description": "a file", "tags": ["t"]}


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def pmid(sandbox):
    return sandbox.create_member(username="alice")["project_member_id"]


@pytest.fixture
def member_client(client, member_factory):
    """A test client logged in as a user with a member."""
    member = member_factory()
    client.force_login(member.user)
    client.member = member
    return client


# -- login -----------------------------------------------------------------------------------


def test_login_redirects_to_open_humans_with_state_and_pkce(client, sandbox):
    response = client.get("/openhumans/login/", {"next": "/after/"})
    location = response["Location"]
    assert location.startswith(sandbox.base_url + "/direct-sharing/projects/oauth2/authorize/?")
    query = parse_qs(urlsplit(location).query)
    assert query["client_id"] == [sandbox.client_id]
    assert query["response_type"] == ["code"]
    assert query["redirect_uri"] == [REDIRECT_URI]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["state"][0]) >= 32 and query["code_challenge"][0]
    assert "after" not in location and "verifier" not in location


def test_pkce_can_be_turned_off(client, sandbox, settings):
    settings.OPENHUMANS_USE_PKCE = False
    assert "code_challenge" not in start_login(client)


def test_login_only_answers_get(client, sandbox):
    assert client.post("/openhumans/login/").status_code == 405


def test_whole_login_creates_a_user_and_logs_in(client, sandbox, pmid):
    response = log_in(client, sandbox, pmid)
    assert response.status_code == 302 and response["Location"] == "/"
    member = OpenHumansMember.objects.get()
    assert member.oh_id == pmid
    assert client.session[SESSION_KEY] == str(member.user.pk)
    assert client.session["_auth_user_backend"] == "openhumans.backends.OpenHumansBackend"
    assert member.list_files() == []


def test_login_works_without_a_trailing_slash_too(client, sandbox, pmid):
    path = authorize(sandbox, pmid, start_login(client))
    assert path.startswith("/openhumans/complete?")
    response = client.get(path.replace("/complete?", "/complete/?"))
    assert response.status_code == 302 and response["Location"] == "/"


def test_login_redirect_setting_is_read_at_use_time(client, sandbox, pmid, settings):
    settings.OPENHUMANS_LOGIN_REDIRECT_URL = "/welcome/"
    assert log_in(client, sandbox, pmid)["Location"] == "/welcome/"


def test_login_goes_to_a_same_host_next(client, sandbox, pmid):
    assert log_in(client, sandbox, pmid, next="/files/?a=1")["Location"] == "/files/?a=1"


HOSTILE_NEXT = [
    "https://evil.example/",
    "//evil.example/",
    "https:evil.example",
    "javascript:alert(1)",
    "/\\evil.example",
    "\\\\evil.example",
    " //evil.example",
    "\t//evil.example",
    "http://testserver@evil.example/",
    "data:text/html,x",
]


@pytest.mark.parametrize("next_url", HOSTILE_NEXT)
def test_login_refuses_an_open_redirect(client, sandbox, pmid, next_url):
    assert log_in(client, sandbox, pmid, next=next_url)["Location"] == "/"


@pytest.mark.parametrize("next_url", HOSTILE_NEXT)
def test_cancelled_login_refuses_an_open_redirect(client, sandbox, next_url):
    query = start_login(client, next=next_url)
    response = client.get(
        "/openhumans/complete", {"error": "access_denied", "state": query["state"]}
    )
    assert response["Location"] == "/"


def test_login_without_the_backend_configured_still_works(client, sandbox, pmid, settings):
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
    assert log_in(client, sandbox, pmid).status_code == 302
    assert client.session[SESSION_KEY] == str(OpenHumansMember.objects.get().user.pk)


def test_inactive_user_is_not_logged_in(client, sandbox, pmid, member_factory):
    log_in(client, sandbox, pmid)
    get_user_model().objects.update(is_active=False)
    other = Client()
    response = log_in(other, sandbox, pmid)
    assert SESSION_KEY not in other.session
    assert "cannot log in" in " ".join(messages_of(response))


def test_complete_refuses_a_missing_state(client, sandbox, pmid):
    query = start_login(client)
    path = authorize(sandbox, pmid, {**query, "state": None})
    response = client.get(path)
    assert response.status_code == 400
    assert not OpenHumansMember.objects.exists()


def test_complete_refuses_a_replayed_state(client, sandbox, pmid):
    path = authorize(sandbox, pmid, start_login(client))
    assert client.get(path).status_code == 302
    client.logout()
    assert client.get(path).status_code == 400


def test_complete_refuses_a_state_from_another_browser(client, sandbox, pmid):
    victim = Client()
    path = authorize(sandbox, pmid, start_login(client))  # attacker's own login
    response = victim.get(path)
    assert response.status_code == 400
    assert SESSION_KEY not in victim.session


def test_only_a_few_states_are_kept(client, sandbox, pmid):
    first = start_login(client)
    for _ in range(MAX_STATES):
        start_login(client)
    assert client.get(authorize(sandbox, pmid, first)).status_code == 400


def test_state_expires(client, sandbox, pmid, settings):
    query = start_login(client)
    settings.OPENHUMANS_STATE_MAX_AGE = 1e-9
    assert client.get(authorize(sandbox, pmid, query)).status_code == 400


def test_cancelled_login_is_a_message_and_a_redirect(client, sandbox):
    query = start_login(client, next="/back/")
    response = client.get(
        "/openhumans/complete", {"error": "access_denied", "state": query["state"]}
    )
    assert response.status_code == 302 and response["Location"] == "/back/"
    assert any("cancelled" in m for m in messages_of(response))


def test_bad_code_is_a_400_not_a_500(client, sandbox):
    query = start_login(client)
    response = client.get("/openhumans/complete", {"code": "nope", "state": query["state"]})
    assert response.status_code == 400


def test_missing_code_is_a_400(client, sandbox):
    query = start_login(client)
    assert client.get("/openhumans/complete", {"state": query["state"]}).status_code == 400


def test_open_humans_down_during_login_is_a_friendly_error(client, sandbox, pmid):
    path = authorize(sandbox, pmid, start_login(client))
    sandbox.set_fault(endpoint="/oauth2/token/", error_rate=1.0, status=503)
    response = client.get(path)
    assert response.status_code in (502, 503)
    assert b"try again" in response.content


def test_logged_in_user_gets_the_account_linked(client, sandbox, pmid, django_user_model):
    user = django_user_model.objects.create_user("existing", password="pw")
    client.force_login(user)
    log_in(client, sandbox, pmid)
    assert OpenHumansMember.objects.get().user == user
    assert django_user_model.objects.count() == 1


def test_account_linked_to_another_user_is_refused(client, sandbox, pmid, django_user_model):
    log_in(Client(), sandbox, pmid)  # pmid now belongs to its own user
    user = django_user_model.objects.create_user("someone", password="pw")
    client.force_login(user)
    response = log_in(client, sandbox, pmid)
    assert response.status_code == 302
    assert "another user" in " ".join(messages_of(response))
    assert OpenHumansMember.objects.get().user != user
    assert client.session[SESSION_KEY] == str(user.pk)


def test_user_with_another_member_cannot_link_a_second(client, sandbox, member_factory):
    member = member_factory("bob")
    client.force_login(member.user)
    other = sandbox.create_member(username="carol")["project_member_id"]
    response = log_in(client, sandbox, other)
    assert "already connected" in " ".join(messages_of(response))
    assert OpenHumansMember.objects.count() == 1


def test_logging_in_again_reauthorizes_a_deauthorized_member(client, sandbox, pmid):
    log_in(client, sandbox, pmid)
    OpenHumansMember.objects.update(oh_deauth=True)
    log_in(Client(), sandbox, pmid)
    assert not OpenHumansMember.objects.get().oh_deauth


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_first_logins_make_one_user(sandbox, pmid, django_user_model):
    clients = [Client() for _ in range(4)]
    paths = [authorize(sandbox, pmid, start_login(c)) for c in clients]
    barrier = threading.Barrier(len(clients))
    statuses = []

    def finish(c, path):
        try:
            barrier.wait()
            statuses.append(c.get(path).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=finish, args=pair) for pair in zip(clients, paths)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [302] * len(clients)
    assert django_user_model.objects.count() == 1
    user = OpenHumansMember.objects.get().user
    assert all(c.session[SESSION_KEY] == str(user.pk) for c in clients)


def test_a_project_with_use_tz_off_logs_in_and_refreshes(client, sandbox, pmid, settings):
    # 0.2.0 worked with USE_TZ = False; aware datetimes would make SQLite refuse the save.
    settings.USE_TZ = False
    assert log_in(client, sandbox, pmid).status_code == 302
    OpenHumansMember.objects.update(token_expires=timezone.now() - timedelta(seconds=5))
    sandbox.expire_access_tokens(pmid)
    assert client.get("/openhumans/list/").status_code == 200
    assert token_requests(sandbox) == 2
    assert OpenHumansMember.objects.get().token_expires > timezone.now() + timedelta(hours=9)


def test_logout_is_post_only(member_client, settings):
    settings.OPENHUMANS_LOGOUT_REDIRECT_URL = "/bye/"
    assert member_client.get("/openhumans/logout/").status_code == 405
    response = member_client.post("/openhumans/logout/")
    assert response["Location"] == "/bye/"
    assert SESSION_KEY not in member_client.session


# -- member pages ----------------------------------------------------------------------------


def test_list_files_page(member_client, sandbox):
    sandbox.add_files(member_client.member.oh_id, basename="my_file.json", metadata=METADATA)
    response = member_client.get("/openhumans/list/")
    assert response.status_code == 200
    assert b"my_file.json" in response.content
    assert [t.name for t in response.templates][0] == "openhumans/list_files.html"
    assert member_client.member.access_token.encode() not in response.content


def test_file_list_links_only_http_download_urls(rf):
    # download_url comes from Open Humans; a javascript: URL must never become a link.
    # Issue 11 changed the links: they go through openhumans:download (a fresh download_url
    # at each click), so no download_url is rendered at all.
    from django.template.loader import render_to_string

    files = [
        {"id": 1, "basename": "ok.csv", "download_url": "https://oh.test/dl/1/?key=k"},
        {"id": 2, "basename": "bad.csv", "download_url": "javascript:alert(1)"},
        {"id": 3, "basename": "odd.csv", "download_url": " JavaScript:alert(1)"},
    ]
    html = render_to_string("openhumans/list_files.html", {"files": files}, request=rf.get("/"))
    assert 'href="/openhumans/download/1/"' in html
    assert "oh.test/dl" not in html
    assert "javascript:" not in html.lower()
    assert "bad.csv" in html and "odd.csv" in html


@pytest.mark.parametrize(
    "path", ["/openhumans/list/", "/openhumans/upload/"], ids=["list", "upload"]
)
def test_anonymous_user_is_offered_to_log_in(client, sandbox, path):
    response = client.get(path)
    assert response.status_code == 403
    assert b"/openhumans/login/" in response.content


def test_login_link_comes_back_to_the_full_page(client, sandbox):
    response = client.get("/openhumans/list/", {"sort": "name", "page": "2"})
    assert response.status_code == 403
    assert b"/openhumans/login/?next=/openhumans/list/%3Fsort%3Dname%26page%3D2" in (
        response.content.replace(b"&amp;", b"&")
    )


def test_refused_login_error_is_logged_on_one_line(client, sandbox, caplog):
    query = start_login(client)
    caplog.set_level("WARNING")
    client.get("/openhumans/complete", {"error": "x\nFORGED log line", "state": query["state"]})
    assert caplog.records and all("\n" not in r.getMessage() for r in caplog.records)


def test_user_without_member_is_offered_to_connect(client, django_user_model, sandbox):
    client.force_login(django_user_model.objects.create_user("nobody"))
    response = client.get("/openhumans/list/")
    assert response.status_code == 403
    assert b"Connect Open Humans" in response.content
    assert client.post("/openhumans/delete_all_files", {}).status_code == 403


def test_deauthorized_member_is_offered_to_reconnect(member_client, sandbox):
    OpenHumansMember.objects.update(oh_deauth=True)
    response = member_client.get("/openhumans/list/")
    assert response.status_code == 403
    assert b"no longer connected" in response.content


def test_member_who_left_is_told_so_not_a_500(member_client, sandbox, settings):
    settings.OPENHUMANS_MASTER_TOKEN = sandbox.master_token  # tells "left" from "lost"
    sandbox.leave(member_client.member.oh_id)
    response = member_client.get("/openhumans/list/")
    assert response.status_code == 403
    assert b"no longer connected" in response.content
    assert OpenHumansMember.objects.get().oh_deauth


def test_member_whose_tokens_died_is_asked_to_reconnect(member_client, sandbox):
    # Issue 10: without the master token a refused token is "log in again", not "left".
    sandbox.leave(member_client.member.oh_id)
    response = member_client.get("/openhumans/list/")
    assert response.status_code == 403
    assert b"Please reconnect Open Humans" in response.content
    stored = OpenHumansMember.objects.get()
    assert stored.needs_reauthorization and not stored.oh_deauth
    assert member_client.get("/openhumans/list/").status_code == 403


def test_open_humans_outage_is_a_friendly_page(member_client, sandbox):
    sandbox.set_fault(
        endpoint="/api/direct-sharing/project/exchange-member/", error_rate=1.0, status=503
    )
    response = member_client.get("/openhumans/list/")
    assert response.status_code in (502, 503)
    assert b"try again" in response.content


def test_unreachable_open_humans_is_a_503(member_client, settings):
    settings.OPENHUMANS_OH_BASE_URL = "http://127.0.0.1:9"
    assert member_client.get("/openhumans/list/").status_code == 503


def test_delete_file_by_id(member_client, sandbox):
    first, second = sandbox.add_files(member_client.member.oh_id, count=2)
    response = member_client.post(
        "/openhumans/delete_file", {"file_id": first, "next": "/openhumans/list/"}
    )
    assert response.status_code == 302 and response["Location"] == "/openhumans/list/"
    assert [f["id"] for f in sandbox.files(member_client.member.oh_id)] == [second]


def test_delete_file_by_basename(member_client, sandbox):
    sandbox.add_files(member_client.member.oh_id, count=2, basename="x.csv")
    member_client.post("/openhumans/delete_file/", {"file_basename": "x.csv"})
    assert sandbox.files(member_client.member.oh_id) == []


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"file_id": "abc"}, b"file_id must be a positive whole number"),
        ({"file_id": "-1"}, b"file_id must be a positive whole number"),
        ({"file_id": str(10**30)}, b"file_id must be a positive whole number"),
        ({}, b"Give exactly one of file_id or file_basename"),
        ({"file_id": "1", "file_basename": "x"}, b"Give exactly one of file_id or file_basename"),
    ],
    ids=["letters", "negative", "huge", "neither", "both"],
)
def test_delete_file_refuses_a_bad_file_id(member_client, sandbox, data, problem):
    response = member_client.post("/openhumans/delete_file", data)
    assert response.status_code == 400
    assert problem in response.content
    assert api_requests(sandbox, "files/delete/") == 0


@pytest.mark.parametrize("path", ["/openhumans/delete_file", "/openhumans/delete_all_files"])
def test_delete_views_are_post_only(member_client, sandbox, path):
    assert member_client.get(path).status_code == 405


@pytest.mark.parametrize("path", ["/openhumans/delete_file", "/openhumans/delete_all_files"])
def test_delete_views_need_csrf(member_factory, sandbox, path):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member_factory().user)
    assert client.post(path, {"file_id": "1"}).status_code == 403


@pytest.mark.parametrize("next_url", HOSTILE_NEXT)
def test_delete_and_upload_refuse_an_open_redirect(member_client, sandbox, next_url):
    (file_id,) = sandbox.add_files(member_client.member.oh_id)
    response = member_client.post("/openhumans/delete_file", {"file_id": file_id, "next": next_url})
    assert response.status_code == 302 and response["Location"] == "/openhumans/list"
    response = member_client.post("/openhumans/delete_all_files", {"next": next_url})
    assert response.status_code == 302 and response["Location"] == "/openhumans/list"
    upload = SimpleUploadedFile("a.txt", b"a")
    response = member_client.post(
        "/openhumans/upload/",
        {"data_file": upload, "description": "d", "tags": "", "next": next_url},
    )
    assert response.status_code == 302 and response["Location"] == "/openhumans/list"


def test_delete_all_files_view(member_client, sandbox):
    sandbox.add_files(member_client.member.oh_id, count=3)
    response = member_client.post("/openhumans/delete_all_files", {"next": "/done/"})
    assert response["Location"] == "/done/"
    assert sandbox.files(member_client.member.oh_id) == []


def test_upload_view_streams_the_file_with_metadata(member_client, sandbox, settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # Django keeps the upload in a temp file
    assert member_client.get("/openhumans/upload/").status_code == 200
    upload = SimpleUploadedFile("notes.txt", b"hello " * 1000)
    response = member_client.post(
        "/openhumans/upload/",
        {"data_file": upload, "description": "my notes", "tags": "a, b c"},
    )
    assert response.status_code == 302
    (stored,) = sandbox.files(member_client.member.oh_id)
    assert stored["basename"] == "notes.txt"
    assert stored["metadata"] == {"description": "my notes", "tags": ["a", "b", "c"]}


def test_upload_view_refuses_an_incomplete_form(member_client, sandbox):
    response = member_client.post("/openhumans/upload/", {"description": "no file"})
    assert response.status_code == 400
    assert sandbox.files(member_client.member.oh_id) == []


def test_upload_view_refuses_an_empty_file_and_sends_nothing(member_client, sandbox):
    upload = SimpleUploadedFile("empty.txt", b"")
    response = member_client.post(
        "/openhumans/upload/", {"data_file": upload, "description": "d", "tags": "t"}
    )
    assert response.status_code == 400
    assert b"The submitted file is empty." in response.content
    assert api_requests(sandbox, "files/upload/direct/") == 0


def test_upload_view_refuses_a_file_over_the_size_limit(member_client, sandbox, settings):
    settings.OPENHUMANS_MAX_UPLOAD_SIZE = 1000
    upload = SimpleUploadedFile("big.bin", b"x" * 1001)
    response = member_client.post(
        "/openhumans/upload/", {"data_file": upload, "description": "d", "tags": "t"}
    )
    assert response.status_code == 413
    assert b"too large" in response.content and b"1000 bytes" in response.content
    assert api_requests(sandbox, "files/upload/direct/") == 0
    assert sandbox.files(member_client.member.oh_id) == []
    settings.OPENHUMANS_MAX_UPLOAD_SIZE = None  # no limit but Open Humans' own
    upload = SimpleUploadedFile("big.bin", b"x" * 1001)
    member_client.post(
        "/openhumans/upload/", {"data_file": upload, "description": "d", "tags": "t"}
    )
    assert [f["basename"] for f in sandbox.files(member_client.member.oh_id)] == ["big.bin"]


def test_a_malformed_size_limit_is_named_at_first_use(member_client, sandbox, settings):
    from openhumans.exceptions import OpenHumansConfigurationError

    settings.OPENHUMANS_MAX_UPLOAD_SIZE = "10MB"
    upload = SimpleUploadedFile("a.txt", b"a")
    with pytest.raises(OpenHumansConfigurationError, match="OPENHUMANS_MAX_UPLOAD_SIZE"):
        member_client.post(
            "/openhumans/upload/", {"data_file": upload, "description": "d", "tags": "t"}
        )
    assert api_requests(sandbox, "files/upload/direct/") == 0


def test_upload_size_limit_default_is_128_mib(settings):
    from openhumans.conf import get_setting

    if hasattr(settings, "OPENHUMANS_MAX_UPLOAD_SIZE"):
        del settings.OPENHUMANS_MAX_UPLOAD_SIZE
    assert get_setting("OPENHUMANS_MAX_UPLOAD_SIZE") == 128 * 1024 * 1024


def test_url_names_are_the_documented_ones():
    from django.urls import reverse

    assert reverse("openhumans:complete") == "/openhumans/complete"
    assert reverse("openhumans:deauth") == "/openhumans/deauth"
    for name in ("list", "delete_file", "delete_all_files", "login", "logout", "upload"):
        assert reverse(f"openhumans:{name}")


def test_documented_view_names_exist():
    from openhumans import views

    for name in ("complete", "deauth", "DeleteFile", "DeleteAllFiles", "list_files"):
        assert hasattr(views, name)
    assert hasattr(views.list_files, "get")
    assert hasattr(views.DeleteFile, "post") and hasattr(views.DeleteAllFiles, "post")


def test_no_token_reaches_the_logs(client, sandbox, pmid, caplog):
    caplog.set_level("DEBUG")
    for name in ("httpx", "httpcore", "openhumans", "django"):
        caplog.set_level("DEBUG", logger=name)
    log_in(client, sandbox, pmid, next="/x/")
    member = OpenHumansMember.objects.get()
    secrets = {member.access_token, member.refresh_token}
    sandbox.add_files(pmid, count=101)
    client.get("/openhumans/list/")
    sandbox.expire_access_tokens(pmid)
    client.get("/openhumans/list/")  # refreshed after a 401
    member.refresh_from_db()
    secrets |= {member.access_token, member.refresh_token}
    OpenHumansMember.objects.update(token_expires=timezone.now() - timedelta(seconds=1))
    upload = SimpleUploadedFile("notes.txt", b"hello")
    client.post("/openhumans/upload/", {"data_file": upload, "description": "d", "tags": "t"})
    client.post("/openhumans/delete_file", {"file_basename": "notes.txt"})
    member.refresh_from_db()
    secrets |= {member.access_token, member.refresh_token}
    member.message("hi", "there")
    # Failures are logged with their tracebacks: they must not carry a token either.
    sandbox.set_fault(
        endpoint="/api/direct-sharing/project/exchange-member/", error_rate=1.0, status=503
    )
    client.get("/openhumans/list/")
    sandbox.clear_faults()
    sandbox.leave(pmid)
    OpenHumansMember.objects.update(token_expires=timezone.now() - timedelta(seconds=1))
    client.get("/openhumans/list/")  # refresh refused: must log in again
    assert OpenHumansMember.objects.get().needs_reauthorization
    assert token_requests(sandbox) == 4
    assert "HTTP Request: POST" in caplog.text  # httpx's own lines were captured
    assert "Open Humans request failed" in caplog.text
    for secret in secrets:  # caplog.text includes the formatted tracebacks
        assert secret not in caplog.text
