"""Spec §6: differences found by running the real server beside the sandbox (issue 8)."""

from __future__ import annotations

import json
import re

import pytest

from .conftest import API, AUTHORIZE, TOKEN, bearer

DIRECT = API + "files/upload/direct/"
COMPLETE = API + "files/upload/complete/"
META = json.dumps({"description": "a file", "tags": ["t"]})


def test_metadata_keys_come_back_in_jsonb_order(oh, http, new_member):
    """§6: PostgreSQL jsonb order, shorter keys first, at every depth; lists keep order."""
    m = new_member()
    sent = {
        "description": "d",
        "tags": ["b", "a"],
        "zz": {"longer": 1, "ab": 2, "b": 3},
        "a": 1,
    }
    oh.add_files(m.pmid, metadata=sent)
    r = http.get(API + "exchange-member/", headers=bearer(m.access_token))
    assert r.status_code == 200, r.text
    raw = r.text[r.text.index('"metadata":') :]
    # Key order is visible only in the bytes: dict equality would not notice.
    assert raw.startswith(
        '"metadata":{"a":1,"zz":{"b":3,"ab":2,"longer":1},"tags":["b","a"],"description":"d"}'
    ), raw[:120]


def test_username_visibility_is_fixed_at_consent(oh, http, project_settings):
    """§6: switching the project setting later does not hide a consented member's name."""
    project_settings(request_username_access=True)
    early = oh.create_member(username="early")["project_member_id"]
    token = oh.issue_tokens(early)["access_token"]
    project_settings(request_username_access=False)
    late = oh.create_member(username="late")["project_member_id"]
    late_token = oh.issue_tokens(late)["access_token"]

    assert http.get(API + "exchange-member/", headers=bearer(token)).json()["username"] == "early"
    assert "username" not in http.get(API + "exchange-member/", headers=bearer(late_token)).json()
    listed = http.get(API + "members/", params={"access_token": oh.master_token}).json()
    names = {item["project_member_id"]: item.get("username") for item in listed["results"]}
    assert names == {early: "early", late: None}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", API),
        ("GET", API + "exchange-member/"),
        ("POST", API + "message/"),
        ("GET", "/api/public/datatypes/"),
        ("POST", TOKEN),
        ("GET", AUTHORIZE),
        ("GET", "/"),
        ("GET", "/api/direct-sharing/project"),  # the 301 to the slash URL
        ("GET", "/no/such/page/"),
    ],
)
def test_security_headers_on_every_response(oh, http, method, path):
    """§6: Django's SecurityMiddleware and XFrameOptionsMiddleware answer everything."""
    r = http.request(method, path)
    assert r.headers.get("x-content-type-options") == "nosniff"
    assert r.headers.get("referrer-policy") == "same-origin"
    assert r.headers.get("x-frame-options") == "DENY"


@pytest.mark.parametrize("authenticated", [True, False])
def test_api_views_vary_as_the_server(oh, http, new_member, authenticated):
    """§6: ``Vary: Accept, Authorization, Cookie, origin`` on API answers, 401s included."""
    headers = bearer(new_member().access_token) if authenticated else {}
    r = http.get(API + "exchange-member/", headers=headers)
    assert r.status_code == (200 if authenticated else 401)
    assert r.headers["vary"] == "Accept, Authorization, Cookie, origin"


def test_webhook_user_agent_is_plain_requests(oh, http, new_member, webhook_receiver):
    """§6: the sender's ``User-Agent`` is requests' own, nothing appended."""
    oh.configure(webhook_url=webhook_receiver.url)
    m = new_member()
    r = http.post(API + "remove-members/", headers=bearer(m.access_token))
    assert r.status_code == 200, r.text
    (delivery,) = webhook_receiver.deliveries
    assert re.fullmatch(r"python-requests/\d+(\.\d+)+", delivery.headers["user-agent"])


def test_complete_without_member_id_under_master_token(oh, http, new_member):
    """§6: the form's list-valued error, as for the other master-token uploads."""
    m = new_member()
    started = http.post(
        DIRECT, headers=bearer(m.access_token), data={"filename": "a", "metadata": META}
    )
    assert started.status_code == 201, started.text
    r = http.post(COMPLETE, headers=bearer(oh.master_token), data={"file_id": started.json()["id"]})
    assert r.status_code == 400
    assert r.json() == {"project_member_id": ["This field is required."]}


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [("[3]", "[3]"), ('["3"]', "['3']"), ('["genetic DATA"]', "['genetic DATA']")],
)
def test_unregistered_datatype_message_echoes_values_as_sent(oh, http, new_member, sent, echoed):
    """§6: ``[3]`` or ``['genetic DATA']``, not the datatype's canonical name."""
    m = new_member()
    r = http.post(
        DIRECT,
        headers=bearer(m.access_token),
        data={"filename": "a", "metadata": META, "datatypes": sent},
    )
    assert r.status_code == 400
    assert r.json() == {
        "datatypes": [f"The following datatypes aren't registered for this project: {echoed}"]
    }


def test_shared_source_project_link_resolves(oh, http, new_member, project_settings):
    """§6: ``/api/public/project/<id>/`` serves every approved project, so a shared
    source's ``source_project`` link is not a 404 (the own project is, while unapproved)."""
    project_settings(approved=False, requested_sources=["direct-sharing-91"])
    m = new_member()
    oh.add_files(m.pmid, source="direct-sharing-91")
    (item,) = http.get(API + "exchange-member/", headers=bearer(m.access_token)).json()["data"]
    shared = http.get(item["source_project"])
    assert shared.status_code == 200, shared.text
    assert shared.json()["id_label"] == "direct-sharing-91"
    assert shared.json()["approved"] is True
    assert http.get("/api/public/project/1/").status_code == 404
    assert http.get("/api/public/project/92/").status_code == 404


@pytest.mark.parametrize("path", [API[:-1] + ".json", API[:-1] + ".json/"])
def test_format_suffix_route(oh, http, new_member, path):
    """§6: DRF's format-suffix routes: ``project.json`` is the project endpoint as JSON."""
    m = new_member()
    r = http.get(path, headers={**bearer(m.access_token), "Accept": "text/html"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json()["id_label"] == "direct-sharing-1"
    exchange = http.get(API + "exchange-member.json", headers=bearer(m.access_token))
    assert exchange.json()["project_member_id"] == m.pmid
    assert http.get(API[:-1] + ".xml", headers=bearer(m.access_token)).status_code == 404
    logged = [e["path"] for e in oh.request_log()["requests"]]
    assert path in logged
