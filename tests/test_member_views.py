"""The download view, the reconnect page, ``member_required`` and the login-URL helpers."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.template import Context, RequestContext, Template

from openhumans.context_processors import login_url as login_url_processor


@pytest.fixture
def member_client(client, member_factory):
    member = member_factory()
    client.force_login(member.user)
    client.member = member
    return client


def test_download_redirects_to_a_fresh_link_even_two_hours_later(sandbox, member_client):
    [file_id] = sandbox.add_files(member_client.member.oh_id, basename="a.csv", content=b"1,2\n")
    page = member_client.get("/openhumans/list/")
    assert f'href="/openhumans/download/{file_id}/"'.encode() in page.content
    sandbox.advance_clock(2 * 3600)  # the page was left open; listed keys are dead by now
    response = member_client.get(f"/openhumans/download/{file_id}/")
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(sandbox.base_url + f"/data-management/datafile-download/{file_id}/")
    # what the browser does next: the redirector, then storage
    got = httpx.get(location, follow_redirects=True)
    assert got.status_code == 200 and got.content == b"1,2\n"


def test_download_of_another_members_file_is_404(sandbox, member_client, member_factory):
    other = member_factory("bob")
    [theirs] = sandbox.add_files(other.oh_id)
    response = member_client.get(f"/openhumans/download/{theirs}/")
    assert response.status_code == 404
    assert b"not among your Open Humans files" in response.content
    assert member_client.get("/openhumans/download/abc/").status_code == 404


def test_download_needs_a_connected_member(sandbox, client, db):
    response = client.get("/openhumans/download/1/")
    assert response.status_code == 403
    assert b"Log in with Open Humans" in response.content


def test_member_required_runs_the_view_for_a_member(sandbox, member_client):
    sandbox.add_files(member_client.member.oh_id, count=2)
    response = member_client.get("/mine/")
    assert response.status_code == 200
    assert response.content == f"{member_client.member.oh_id}: 2".encode()


def test_member_required_sends_a_visitor_to_log_in_and_back(sandbox, client, db):
    response = client.get("/mine/?x=1")
    assert response.status_code == 302
    parts = urlsplit(response["Location"])
    assert parts.path == "/openhumans/login/"
    assert parse_qs(parts.query)["next"] == ["/mine/?x=1"]


def test_member_required_sends_a_member_who_left_to_reconnect(sandbox, member_client):
    sandbox.leave(member_client.member.oh_id)  # Open Humans revoked the tokens
    response = member_client.get("/mine/")
    assert response.status_code == 302
    parts = urlsplit(response["Location"])
    assert parts.path == "/openhumans/reconnect/"
    page = member_client.get(response["Location"])
    assert page.status_code == 200
    assert b"Reconnect Open Humans" in page.content
    assert b"/openhumans/login/?next=/mine/" in page.content
    # already marked: the next visit goes straight to the reconnect page
    again = member_client.get("/mine/")
    assert urlsplit(again["Location"]).path == "/openhumans/reconnect/"


def test_member_required_sends_a_revoked_token_to_reconnect(sandbox, member_client):
    # Revoked without a webhook (spec §1.5): the refresh token dies with the access token.
    sandbox.http.post(
        "/oauth2/revoke_token/",
        data={
            "token": member_client.member.access_token,
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
        },
    )
    response = member_client.get("/mine/")
    assert urlsplit(response["Location"]).path == "/openhumans/reconnect/"


def test_the_mixin_offers_to_reconnect_after_a_revoked_token(sandbox, member_client, settings):
    # The master token tells "left" (this page) from "tokens lost" (issue 10: "Please
    # reconnect"; tests/test_views.py covers that one).
    settings.OPENHUMANS_MASTER_TOKEN = sandbox.master_token
    sandbox.leave(member_client.member.oh_id)
    response = member_client.get("/openhumans/list/")
    assert response.status_code == 403
    assert b"Open Humans access ended" in response.content


def test_reconnect_refuses_a_foreign_next(client, db):
    page = client.get("/openhumans/reconnect/", {"next": "https://evil.example/"})
    assert page.status_code == 200
    assert b"evil.example" not in page.content


def test_login_url_tag_and_context_processor(rf):
    request = rf.get("/page/?a=1")
    html = Template("{% load openhumans_tags %}{% openhumans_login_url %}").render(
        RequestContext(request, {})
    )
    assert html == "/openhumans/login/?next=/page/%3Fa%3D1"
    explicit = Template('{% load openhumans_tags %}{% openhumans_login_url "/x/" %}').render(
        Context({})
    )
    assert explicit == "/openhumans/login/?next=/x/"
    assert str(login_url_processor(request)["openhumans_login_url"]) == html


def test_file_list_include(rf):
    from django.template.loader import render_to_string

    files = [{"id": 7, "basename": "a.csv", "metadata": {"description": "d", "tags": ["t"]}}]
    html = render_to_string("openhumans/_file_list.html", {"files": files})
    assert 'href="/openhumans/download/7/"' in html and "a.csv" in html
