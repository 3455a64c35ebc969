"""Conformance: project info, exchange-member and members (spec §2.1–§2.3)."""

from __future__ import annotations

import re
import uuid

import pytest

from .conftest import API, MEMBER_INVALID, bearer, query, without_query

EXCHANGE = API + "exchange-member/"
MEMBERS = API + "members/"

PROJECT_FIELDS = {
    "active": bool,
    "approved": bool,
    "authorized_members": int,
    "badge_image": (str, type(None)),
    "contact_email": str,
    "id": int,
    "id_label": str,
    "info_url": str,
    "is_academic_or_nonprofit": bool,
    "is_study": bool,
    "leader": str,
    "long_description": str,
    "name": str,
    "organization": str,
    "registered_datatypes": list,
    "requested_sources": list,
    "request_sources_access": list,
    "request_username_access": bool,
    "returned_data_description": str,
    "short_description": str,
    "slug": str,
    "type": str,
}
FILE_FIELDS = {
    "id",
    "basename",
    "created",
    "datatypes",
    "download_url",
    "metadata",
    "source",
    "source_project",
}


def project(http, token):
    r = http.get(API, headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()


# --- §2.1 project ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["user", "master"])
def test_project_fields(oh, http, new_member, kind):
    """§2.1: one object with exactly the documented keys and types."""
    m = new_member()
    body = project(http, m.access_token if kind == "user" else oh.master_token)
    assert set(body) == set(PROJECT_FIELDS)
    for key, kind_ in PROJECT_FIELDS.items():
        assert isinstance(body[key], kind_), (key, body[key])
    assert body["id_label"] == f"direct-sharing-{body['id']}"
    assert body["type"] == "oauth2"
    for url in body["registered_datatypes"]:
        assert re.fullmatch(r"/api/public/datatype/\d+/", url), url
    for url in body["requested_sources"]:
        assert re.fullmatch(r"/api/public/project/\d+/", url), url
    for label in body["request_sources_access"]:
        assert re.fullmatch(r"direct-sharing-\d+", label), label


def test_project_authorized_members_counts_active_members(oh, http, new_member):
    """§2.1: ``authorized_members`` counts active members only."""
    members = [new_member() for _ in range(3)]
    assert project(http, oh.master_token)["authorized_members"] == 3
    oh.leave(members[0].pmid)
    assert project(http, oh.master_token)["authorized_members"] == 2


# --- §2.2 exchange-member ----------------------------------------------------------------


def test_exchange_member_envelope_and_key_order(oh, http, new_member):
    """§2.2: count, next, previous, created, project_member_id, sources_shared, [username], data."""
    m = new_member(files=2)
    info = project(http, m.access_token)
    r = http.get(EXCHANGE, headers=bearer(m.access_token))
    assert r.status_code == 200, r.text
    body = r.json()
    expected = ["count", "next", "previous", "created", "project_member_id", "sources_shared"]
    if info["request_username_access"]:
        expected.append("username")
    expected.append("data")
    assert list(body) == expected
    assert body["count"] == 2
    assert body["next"] is None and body["previous"] is None
    assert body["project_member_id"] == m.pmid
    assert isinstance(body["sources_shared"], list)
    assert info["id_label"] not in body["sources_shared"]
    if info["request_username_access"]:
        assert body["username"] == m.username


def test_exchange_member_file_objects(oh, http, new_member):
    """§2.2: file object fields, absolute URLs, source = the project's id_label."""
    m = new_member()
    metadata = {"description": "Test data", "tags": ["text"], "extra": {"k": 1}}
    (file_id,) = oh.add_files(
        m.pmid, count=1, basename="data1.csv", content=b"a,b\n", metadata=metadata
    )
    info = project(http, m.access_token)
    (item,) = http.get(EXCHANGE, headers=bearer(m.access_token)).json()["data"]
    assert set(item) == FILE_FIELDS
    assert item["id"] == file_id
    assert item["basename"] == "data1.csv"
    assert item["metadata"] == metadata
    assert item["source"] == info["id_label"]
    assert item["source_project"].endswith(f"/api/public/project/{info['id']}/")
    assert item["source_project"].startswith(("http://", "https://"))
    for url in item["datatypes"]:
        assert re.fullmatch(r"https?://[^/]+/api/public/datatype/\d+/", url), url
    assert without_query(item["download_url"]) == (
        f"{oh.base_url}/data-management/datafile-download/{file_id}/"
    )
    (key,) = query(item["download_url"])
    assert key[0] == "key"
    assert uuid.UUID(key[1]).version == 4


def test_exchange_member_each_listing_mints_new_keys(oh, http, new_member):
    """§2.2: every listing creates a new download key for every file on the page."""
    m = new_member(files=1)
    first = http.get(EXCHANGE, headers=bearer(m.access_token)).json()["data"][0]
    second = http.get(EXCHANGE, headers=bearer(m.access_token)).json()["data"][0]
    assert first["download_url"] != second["download_url"]


def test_exchange_member_default_limit_and_links(oh, http, new_member):
    """§2.2: default page 100; next/previous absolute, carrying access_token, sorted."""
    m = new_member(files=150)
    tok = m.access_token
    r = http.get(EXCHANGE, params={"access_token": tok})
    body = r.json()
    assert body["count"] == 150
    assert len(body["data"]) == 100
    assert body["previous"] is None
    assert body["next"] == f"{oh.base_url}{EXCHANGE}?access_token={tok}&limit=100&offset=100"
    page2 = http.get(body["next"]).json()
    assert len(page2["data"]) == 50
    assert page2["next"] is None
    assert page2["previous"] == f"{oh.base_url}{EXCHANGE}?access_token={tok}&limit=100"
    ids = [f["id"] for f in body["data"] + page2["data"]]
    assert len(set(ids)) == 150


@pytest.mark.parametrize("limit", ["0", "-5", "abc", ""])
def test_exchange_member_bad_limit_falls_back_to_100(oh, http, new_member, limit):
    """§2.2: ``limit<=0`` or a non-integer falls back to 100."""
    m = new_member(files=101)
    body = http.get(EXCHANGE, params={"limit": limit}, headers=bearer(m.access_token)).json()
    assert len(body["data"]) == 100
    assert dict(query(body["next"]))["offset"] == "100"


def test_exchange_member_no_maximum_limit(oh, http, new_member):
    """§2.2: no maximum: the view's max_limit=200 is ignored."""
    m = new_member(files=250)
    body = http.get(EXCHANGE, params={"limit": 300}, headers=bearer(m.access_token)).json()
    assert len(body["data"]) == 250
    assert body["next"] is None


def test_exchange_member_links_keep_every_param_sorted(oh, http, new_member):
    """§2.2: links carry every query parameter of the request, in sorted order."""
    m = new_member(files=5)
    tok = m.access_token
    r = http.get(EXCHANGE + f"?zeta=1&offset=2&limit=2&access_token={tok}&alpha=x")
    body = r.json()
    assert [f["id"] for f in body["data"]] == sorted(f["id"] for f in body["data"])
    assert body["next"] == (
        f"{oh.base_url}{EXCHANGE}?access_token={tok}&alpha=x&limit=2&offset=4&zeta=1"
    )
    assert body["previous"] == f"{oh.base_url}{EXCHANGE}?access_token={tok}&alpha=x&limit=2&zeta=1"


def test_exchange_member_header_token_gives_tokenless_links(oh, http, new_member):
    """§2.2: with a header-only token the link has no token."""
    m = new_member(files=3)
    body = http.get(EXCHANGE, params={"limit": 1}, headers=bearer(m.access_token)).json()
    assert body["next"] == f"{oh.base_url}{EXCHANGE}?limit=1&offset=1"


def test_exchange_member_master_link_carries_project_member_id(oh, http, new_member):
    """§2.2: with a master token the link also carries project_member_id."""
    m = new_member(files=3)
    tok = oh.master_token
    body = http.get(
        EXCHANGE, params={"project_member_id": m.pmid, "access_token": tok, "limit": 2}
    ).json()
    assert body["project_member_id"] == m.pmid
    assert body["next"] == (
        f"{oh.base_url}{EXCHANGE}?access_token={tok}&limit=2&offset=2&project_member_id={m.pmid}"
    )


def test_exchange_member_orders_by_id_and_pages_do_not_overlap(oh, http, new_member):
    """§2.2: ordered by source then id; walking ``next`` yields each file once."""
    m = new_member()
    created = []
    for name in ["c.txt", "a.txt", "b.txt", "a.txt", "z.txt"]:
        created += oh.add_files(m.pmid, count=1, basename=name)
    url = f"{EXCHANGE}?limit=2&access_token={m.access_token}"
    seen = []
    while url:
        body = http.get(url).json()
        seen += body["data"]
        url = body["next"]
    ids = [f["id"] for f in seen]
    assert ids == sorted(created)
    assert [(f["source"], f["id"]) for f in seen] == sorted((f["source"], f["id"]) for f in seen)


def test_exchange_member_user_token_ignores_project_member_id(oh, http, new_member):
    """§2.2: with a user token the member is the token's owner."""
    alice, bob = new_member(files=1), new_member(files=2)
    body = http.get(
        EXCHANGE, params={"project_member_id": bob.pmid}, headers=bearer(alice.access_token)
    ).json()
    assert body["project_member_id"] == alice.pmid
    assert body["count"] == 1


@pytest.mark.parametrize("pmid", ["99999999", "1234", "abcdefgh"])
def test_exchange_member_master_unknown_member(oh, http, new_member, pmid):
    """§2.2: master token with an unknown project_member_id → 400, plain-string value."""
    new_member()
    r = http.get(EXCHANGE, params={"project_member_id": pmid}, headers=bearer(oh.master_token))
    assert r.status_code == 400, r.text
    assert r.json() == MEMBER_INVALID


def test_exchange_member_master_without_member(oh, http, new_member):
    """§2.2 / §6 choice: master token without project_member_id → 400 (500 at HEAD)."""
    new_member()
    r = http.get(EXCHANGE, headers=bearer(oh.master_token))
    assert r.status_code == 400, r.text
    assert r.json() == MEMBER_INVALID


# --- §2.3 members ----------------------------------------------------------------------


def test_members_envelope(oh, http, new_member):
    """§2.3: items under ``results``; each item's keys and ``exchange_member`` link."""
    m = new_member(files=3)
    tok = oh.master_token
    info = project(http, tok)
    r = http.get(MEMBERS, params={"access_token": tok})
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["count", "next", "previous", "results"]
    assert body["count"] == 1 and body["next"] is None and body["previous"] is None
    (item,) = body["results"]
    keys = {
        "created",
        "project_member_id",
        "file_count",
        "exchange_member",
        "sources_shared",
        "data",
    }
    if info["request_username_access"]:
        keys.add("username")
        assert item["username"] == m.username
    assert set(item) == keys
    assert item["project_member_id"] == m.pmid
    assert item["file_count"] == 3
    assert len(item["data"]) == 3
    assert all(set(f) == FILE_FIELDS for f in item["data"])
    assert item["exchange_member"] == (
        f"{oh.base_url}{EXCHANGE}?project_member_id={m.pmid}&access_token={tok}"
    )


def test_members_at_most_ten_files(oh, http, new_member):
    """§2.3: at most 10 files per item plus file_count; exchange_member gets the rest."""
    m = new_member(files=12)
    (item,) = http.get(MEMBERS, params={"access_token": oh.master_token}).json()["results"]
    assert item["file_count"] == 12
    assert len(item["data"]) == 10
    full = http.get(item["exchange_member"])
    assert full.status_code == 200, full.text
    assert full.json()["project_member_id"] == m.pmid
    assert full.json()["count"] == 12


def test_members_lists_only_active_members(oh, http, new_member):
    """§2.3 / §A.5: only active members are listed."""
    stay, leave = new_member(), new_member()
    oh.leave(leave.pmid)
    body = http.get(MEMBERS, params={"access_token": oh.master_token}).json()
    assert body["count"] == 1
    assert [i["project_member_id"] for i in body["results"]] == [stay.pmid]


def test_members_default_limit_and_next_link(oh, http):
    """§2.3: the default page is 100 (not 10); next carries the token."""
    for i in range(101):
        oh.create_member(username=f"m{i}")
    tok = oh.master_token
    body = http.get(MEMBERS, params={"access_token": tok}).json()
    assert body["count"] == 101
    assert len(body["results"]) == 100
    assert body["next"] == f"{oh.base_url}{MEMBERS}?access_token={tok}&limit=100&offset=100"
    rest = http.get(body["next"]).json()
    assert len(rest["results"]) == 1
    pmids = {i["project_member_id"] for i in body["results"] + rest["results"]}
    assert len(pmids) == 101


def test_members_limit_and_offset(oh, http):
    """§2.3: limit and offset page the listing."""
    for i in range(5):
        oh.create_member(username=f"m{i}")
    tok = oh.master_token
    body = http.get(MEMBERS, params={"access_token": tok, "limit": 2, "offset": 4}).json()
    assert len(body["results"]) == 1
    assert body["next"] is None
    assert body["previous"] == f"{oh.base_url}{MEMBERS}?access_token={tok}&limit=2&offset=2"


# --- project settings that change what a client sees ---------------------------------------


def test_shared_sources_listed_and_ordered_by_source_then_id(
    oh, http, new_member, project_settings
):
    """§2.1/§2.2: requested sources become sources_shared; files sorted by (source, id)."""
    project_settings(requested_sources=["direct-sharing-91"])
    info = project(http, oh.master_token)
    assert info["request_sources_access"] == ["direct-sharing-91"]
    assert info["requested_sources"] == ["/api/public/project/91/"]
    m = new_member()
    own, other = [], []
    for _ in range(2):
        other += oh.add_files(m.pmid, count=1, source="direct-sharing-91")
        own += oh.add_files(m.pmid, count=1)
    oh.add_files(m.pmid, count=1, source="direct-sharing-77")  # not shared: never listed
    body = http.get(EXCHANGE, headers=bearer(m.access_token)).json()
    assert body["sources_shared"] == ["direct-sharing-91"]
    assert [(f["source"], f["id"]) for f in body["data"]] == (
        [(info["id_label"], i) for i in own] + [("direct-sharing-91", i) for i in other]
    )
    shared = [f for f in body["data"] if f["source"] == "direct-sharing-91"]
    assert all(f["source_project"].endswith("/api/public/project/91/") for f in shared)


@pytest.mark.parametrize("usernames", [True, False])
def test_username_only_when_requested(oh, http, new_member, project_settings, usernames):
    """§2.2/§2.3: ``username`` keys are present only when the project requests usernames."""
    project_settings(request_username_access=usernames)
    m = new_member(username="beau")
    body = http.get(EXCHANGE, headers=bearer(m.access_token)).json()
    (item,) = http.get(MEMBERS, params={"access_token": oh.master_token}).json()["results"]
    assert ("username" in body) is usernames
    assert ("username" in item) is usernames
    if usernames:
        assert body["username"] == item["username"] == "beau"
        assert list(body)[-2:] == ["username", "data"]
