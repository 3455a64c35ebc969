"""The sandbox's pages for people (issue 14): the authorize page, member pages, the icon."""

from __future__ import annotations

from .conftest import AUTHORIZE, consent_form, multi


def authorize_params(oh) -> dict[str, str]:
    return {"client_id": oh.client_id, "response_type": "code"}


def test_authorize_page_says_what_it_does(oh, http):
    oh.create_member(username="alice")
    page = http.get(AUTHORIZE, params=authorize_params(oh))
    assert page.status_code == 200
    assert "Sign in to the Open Humans sandbox" in page.text
    assert "Create a new member" in page.text
    assert "Log in as" not in page.text
    form = consent_form(page.text)
    assert "new" in form.fields["member"]  # "create" is one of the choices, not a side field


def test_selected_member_and_typed_name_cannot_disagree(oh, http):
    """Choosing alice and typing "bob" is refused with a message naming both; no one is
    signed in and no member is created."""
    alice = oh.create_member(username="alice")["project_member_id"]
    form = consent_form(http.get(AUTHORIZE, params=authorize_params(oh)).text)
    data = [*form.hidden, ("member", alice), ("new_username", "bob"), ("action", "authorize")]
    r = http.post(AUTHORIZE, data=multi(data))
    assert r.status_code == 400
    assert "You chose alice and also typed the new name bob" in r.text
    assert [m["username"] for m in oh.members()] == ["alice"]


def test_create_new_member_choice(oh, http):
    oh.create_member(username="alice")
    form = consent_form(http.get(AUTHORIZE, params=authorize_params(oh)).text)
    data = [*form.hidden, ("member", "new"), ("new_username", "carol"), ("action", "authorize")]
    r = http.post(AUTHORIZE, data=multi(data))
    assert r.status_code == 302, r.text
    assert "code=" in r.headers["location"]
    assert sorted(m["username"] for m in oh.members()) == ["alice", "carol"]
    empty = [*form.hidden, ("member", "new"), ("new_username", " "), ("action", "authorize")]
    refused = http.post(AUTHORIZE, data=multi(empty))
    assert refused.status_code == 400
    assert "Type a name for the new member." in refused.text


def test_member_page_links_back_to_the_project(oh, http):
    pmid = oh.create_member(username="alice")["project_member_id"]
    page = http.get(f"/members/{pmid}/")
    assert page.status_code == 200
    assert '<a href="/">&larr; Back to Sandbox Project</a>' in page.text


def test_favicon_is_served_and_linked(oh, http):
    icon = http.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/svg+xml"
    assert icon.content.startswith(b"<svg")
    assert '<link rel=icon href="/favicon.ico"' in http.get("/").text


def test_page_routes_answer_405_with_allow(oh, http):
    """The route table's 405: Django's empty one with ``Allow``; JSON on the control plane."""
    r = http.post("/")
    assert (r.status_code, r.headers["allow"], r.content) == (405, "GET, HEAD", b"")
    r = http.get("/oauth2/token/")
    assert (r.status_code, r.headers["allow"]) == (405, "POST, OPTIONS")
    r = http.put("/_sandbox/reset/")
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert r.json() == {"error": "method not allowed; use POST"}
