"""Conformance: message, remove-members and delete (spec §2.4, §2.5, §2.8)."""

from __future__ import annotations

import pytest

from .conftest import (
    API,
    INVALID_TOKEN,
    MEMBER_INVALID,
    REALM_INVALID,
    TOKEN,
    assert_auth_error,
    bearer,
)

MESSAGE = API + "message/"
REMOVE = API + "remove-members/"
DELETE = API + "files/delete/"
EXCHANGE = API + "exchange-member/"


def inbox_pmids(oh):
    return sorted(e["project_member_id"] for e in oh.inbox())


def active_pmids(http, oh):
    body = http.get(API + "members/", params={"access_token": oh.master_token}).json()
    return sorted(i["project_member_id"] for i in body["results"])


def file_ids(http, oh, pmid):
    r = http.get(EXCHANGE, params={"project_member_id": pmid}, headers=bearer(oh.master_token))
    return [f["id"] for f in r.json()["data"]]


def assert_success(r):
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.content == b'"success"'


# --- §2.4 message -------------------------------------------------------------------------


def test_message_user_token(oh, http, new_member):
    """§2.4: user token → "success"; only the token owner gets it."""
    m, other = new_member(), new_member()
    r = http.post(
        MESSAGE,
        headers=bearer(m.access_token),
        json={
            "subject": "Hello",
            "message": "Body",
            "project_member_ids": [other.pmid],
            "all_members": True,
        },
    )
    assert_success(r)
    (entry,) = oh.inbox()
    assert entry["project_member_id"] == m.pmid
    assert entry["message"] == "Body"
    assert entry["subject"] == "[Open Humans Project Message] Hello"


def test_message_default_subject(oh, http, new_member):
    """§2.4: without a subject: ``[Open Humans Project Message] From "<project name>"``."""
    m = new_member()
    name = http.get(API, headers=bearer(m.access_token)).json()["name"]
    assert_success(http.post(MESSAGE, headers=bearer(m.access_token), data={"message": "x"}))
    (entry,) = oh.inbox()
    assert entry["subject"] == f'[Open Humans Project Message] From "{name}"'


def test_message_json_array_of_three(oh, http, new_member):
    """§2.4: a JSON array of 3 IDs reaches 3 inboxes."""
    ms = [new_member() for _ in range(4)]
    targets = [m.pmid for m in ms[:3]]
    r = http.post(
        MESSAGE,
        headers=bearer(oh.master_token),
        json={"message": "hi", "project_member_ids": targets},
    )
    assert_success(r)
    assert inbox_pmids(oh) == sorted(targets)


def test_message_repeated_form_keys_reach_only_the_last(oh, http, new_member):
    """§2.4: the form-encoding trap: repeated keys keep only the last value."""
    ms = [new_member() for _ in range(3)]
    data = {"message": "hi", "project_member_ids": [m.pmid for m in ms]}
    assert_success(http.post(MESSAGE, headers=bearer(oh.master_token), data=data))
    assert inbox_pmids(oh) == [ms[-1].pmid]


@pytest.mark.parametrize("sep", [",", ", ", " ", "\n", "\r\n"])
def test_message_separated_string(oh, http, new_member, sep):
    """§2.4: one comma/space/newline-separated string."""
    ms = [new_member() for _ in range(3)]
    ids = sep.join(m.pmid for m in ms)
    r = http.post(
        MESSAGE, headers=bearer(oh.master_token), data={"message": "hi", "project_member_ids": ids}
    )
    assert_success(r)
    assert inbox_pmids(oh) == sorted(m.pmid for m in ms)


@pytest.mark.parametrize("value", [True, "true", "True"])
def test_message_all_members(oh, http, new_member, value):
    """§2.4: ``all_members`` (master) messages every active member."""
    ms = [new_member() for _ in range(3)]
    oh.leave(ms[0].pmid)
    body = {"message": "hi", "all_members": value}
    if isinstance(value, bool):
        r = http.post(MESSAGE, headers=bearer(oh.master_token), json=body)
    else:
        r = http.post(MESSAGE, headers=bearer(oh.master_token), data=body)
    assert_success(r)
    assert inbox_pmids(oh) == sorted(m.pmid for m in ms[1:])


def test_message_substitutes_project_member_id(oh, http, new_member):
    """§2.4: the message is a template with ``PROJECT_MEMBER_ID`` in context."""
    ms = [new_member() for _ in range(2)]
    r = http.post(
        MESSAGE,
        headers=bearer(oh.master_token),
        json={
            "message": "Your id is {{ PROJECT_MEMBER_ID }}.",
            "project_member_ids": [m.pmid for m in ms],
        },
    )
    assert_success(r)
    got = {e["project_member_id"]: e["message"] for e in oh.inbox()}
    assert got == {m.pmid: f"Your id is {m.pmid}." for m in ms}


def test_message_is_a_django_template(oh, http, new_member):
    """§2.4: any other ``{{ }}`` or ``{% %}`` is interpreted too (Django template rules)."""
    m = new_member()
    text = (
        "{% if PROJECT_MEMBER_ID %}yes{% endif %}|{{ nothing }}|{{ PROJECT_MEMBER_ID|slice:':2' }}"
    )
    assert_success(http.post(MESSAGE, headers=bearer(m.access_token), json={"message": text}))
    (entry,) = oh.inbox()
    assert entry["message"] == f"yes||{m.pmid[:2]}"


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            {"message": "hi", "project_member_ids": "1234567"},
            {"project_member_ids": ["Project member IDs are always 8 digits long."]},
        ),
        (
            {"message": "hi", "project_member_ids": "12345678,123456789"},
            {"project_member_ids": ["Project member IDs are always 8 digits long."]},
        ),
        (
            {"message": "hi", "project_member_ids": "12345678"},
            {"project_member_ids": ["Invalid project member ID(s): 12345678"]},
        ),
        (
            {"message": "hi", "project_member_ids": "12345678, 87654321"},
            {"project_member_ids": ["Invalid project member ID(s): 12345678, 87654321"]},
        ),
        (
            {"message": "hi"},
            {"__all__": ["You must specify either all members or provide a list of IDs."]},
        ),
        (
            {"message": "hi", "project_member_ids": ""},
            {"__all__": ["You must specify either all members or provide a list of IDs."]},
        ),
        (
            {"message": "hi", "all_members": "true", "project_member_ids": "MEMBER"},
            {
                "__all__": [
                    "You must specify either all members or provide a list of IDs but not both."
                ]
            },
        ),
        (
            {"project_member_ids": "MEMBER"},
            {"message": ["This field is required."]},
        ),
        (
            {},
            {
                "message": ["This field is required."],
                "__all__": ["You must specify either all members or provide a list of IDs."],
            },
        ),
    ],
    ids=[
        "short",
        "nine",
        "unknown",
        "two-unknown",
        "neither",
        "empty-ids",
        "both",
        "no-message",
        "several",
    ],
)
def test_message_errors(oh, http, new_member, body, errors):
    """§2.4: each error text, in the ``errors`` envelope; nothing is sent."""
    m = new_member()
    body = {k: (m.pmid if v == "MEMBER" else v) for k, v in body.items()}
    r = http.post(MESSAGE, headers=bearer(oh.master_token), data=body)
    assert r.status_code == 400, r.text
    assert r.json() == {"errors": errors}
    assert oh.inbox() == []


def test_message_user_token_without_message(oh, http, new_member):
    """§2.4: with a user token only the message is checked."""
    m = new_member()
    r = http.post(MESSAGE, headers=bearer(m.access_token), data={"subject": "s"})
    assert r.status_code == 400
    assert r.json() == {"errors": {"message": ["This field is required."]}}


# --- §2.5 remove-members --------------------------------------------------------------------


def test_remove_with_user_token_deletes_that_token(oh, http, new_member):
    """§2.5: empty POST, no Content-Type; the owner is revoked and their tokens die."""
    m, other = new_member(), new_member()
    r = http.post(REMOVE, headers=bearer(m.access_token))
    assert_success(r)
    assert_auth_error(http.get(API, headers=bearer(m.access_token)), INVALID_TOKEN, REALM_INVALID)
    r = http.post(
        TOKEN,
        data={"grant_type": "refresh_token", "refresh_token": m.refresh_token},
        auth=(oh.client_id, oh.client_secret),
    )
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_grant"}
    assert active_pmids(http, oh) == [other.pmid]
    assert http.get(API, headers=bearer(other.access_token)).status_code == 200


def test_remove_deletes_all_the_members_tokens(oh, http, new_member):
    """§2.5: **all** of the member's access and refresh tokens are deleted."""
    m = new_member()
    second = oh.issue_tokens(m.pmid)
    assert_success(http.post(REMOVE, headers=bearer(m.access_token)))
    assert http.get(API, headers=bearer(second["access_token"])).status_code == 401
    r = http.post(
        TOKEN,
        data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
        auth=(oh.client_id, oh.client_secret),
    )
    assert r.json() == {"error": "invalid_grant"}


def test_remove_keeps_files_and_member_id(oh, http, new_member):
    """§2.5: files are not deleted; a master-token listing still sees them."""
    m = new_member(files=2)
    assert_success(http.post(REMOVE, headers=bearer(m.access_token)))
    assert len(file_ids(http, oh, m.pmid)) == 2


def test_remove_master_json_array(oh, http, new_member):
    """§2.5: master token with a JSON array of IDs."""
    ms = [new_member() for _ in range(3)]
    r = http.post(
        REMOVE,
        headers=bearer(oh.master_token),
        json={"project_member_ids": [ms[0].pmid, ms[1].pmid]},
    )
    assert_success(r)
    assert active_pmids(http, oh) == [ms[2].pmid]
    for m in ms[:2]:
        assert http.get(API, headers=bearer(m.access_token)).status_code == 401


def test_remove_master_form_repeated_keys_removes_only_last(oh, http, new_member):
    """§2.5: same encoding trap as §2.4."""
    ms = [new_member() for _ in range(3)]
    data = {"project_member_ids": [ms[0].pmid, ms[1].pmid]}
    assert_success(http.post(REMOVE, headers=bearer(oh.master_token), data=data))
    assert active_pmids(http, oh) == sorted([ms[0].pmid, ms[2].pmid])


def test_remove_master_comma_string(oh, http, new_member):
    """§2.5: one comma-separated string."""
    ms = [new_member() for _ in range(3)]
    data = {"project_member_ids": f"{ms[0].pmid},{ms[2].pmid}"}
    assert_success(http.post(REMOVE, headers=bearer(oh.master_token), data=data))
    assert active_pmids(http, oh) == [ms[1].pmid]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"__all__": ["You must provide a list of project member IDs."]}),
        ({"all_members": "true"}, {"__all__": ["You must provide a list of project member IDs."]}),
        (
            {"project_member_ids": "1234"},
            {"project_member_ids": ["Project member IDs are always 8 digits long."]},
        ),
        (
            {"project_member_ids": "12345678"},
            {"project_member_ids": ["Invalid project member ID(s): 12345678"]},
        ),
    ],
    ids=["nothing", "all_members", "short", "unknown"],
)
def test_remove_errors(oh, http, new_member, body, errors):
    """§2.5: errors envelope; nobody is removed."""
    m = new_member()
    r = http.post(REMOVE, headers=bearer(oh.master_token), data=body)
    assert r.status_code == 400, r.text
    assert r.json() == {"errors": errors}
    assert active_pmids(http, oh) == [m.pmid]


# --- §2.8 delete ---------------------------------------------------------------------------


def test_delete_by_file_id(oh, http, new_member):
    """§2.8: 200 {"ids":[id]}; the file is gone from the listing."""
    m = new_member()
    ids = oh.add_files(m.pmid, count=3)
    r = http.post(DELETE, headers=bearer(m.access_token), data={"file_id": str(ids[1])})
    assert r.status_code == 200, r.text
    assert r.json() == {"ids": [ids[1]]}
    assert file_ids(http, oh, m.pmid) == [ids[0], ids[2]]


def test_delete_by_file_id_json_int(oh, http, new_member):
    """§2.8: JSON body with an integer file_id."""
    m = new_member()
    ids = oh.add_files(m.pmid, count=2)
    r = http.post(DELETE, headers=bearer(m.access_token), json={"file_id": ids[0]})
    assert r.json() == {"ids": [ids[0]]}


def test_delete_by_basename(oh, http, new_member):
    """§2.8: exact match on the basename; every match is deleted."""
    m = new_member()
    a = oh.add_files(m.pmid, count=1, basename="a.csv")
    b = oh.add_files(m.pmid, count=1, basename="b.csv")
    a += oh.add_files(m.pmid, count=1, basename="a.csv")
    oh.add_files(m.pmid, count=1, basename="a.csv.bak")
    r = http.post(DELETE, headers=bearer(m.access_token), data={"file_basename": "a.csv"})
    assert r.status_code == 200
    assert sorted(r.json()["ids"]) == sorted(a)
    assert len(file_ids(http, oh, m.pmid)) == 2
    assert b[0] in file_ids(http, oh, m.pmid)


@pytest.mark.parametrize("value", ["True", "true", "yes", "1", "on"])
def test_delete_all_files_truthy(oh, http, new_member, value):
    """§2.8: ``all_files`` True/true and any other non-empty string are true."""
    m, other = new_member(files=3), new_member(files=1)
    r = http.post(DELETE, headers=bearer(m.access_token), data={"all_files": value})
    assert r.status_code == 200, r.text
    assert len(r.json()["ids"]) == 3
    assert file_ids(http, oh, m.pmid) == []
    assert len(file_ids(http, oh, other.pmid)) == 1


@pytest.mark.parametrize("value", ["False", "false"])
def test_delete_all_files_falsy_is_no_selector(oh, http, new_member, value):
    """§2.8: ``all_files`` False/false is false, so nothing selects a file."""
    m = new_member(files=2)
    r = http.post(DELETE, headers=bearer(m.access_token), data={"all_files": value})
    assert r.status_code == 400, r.text
    assert r.json() == {"missing_field": "one of file_id, file_basename, or all_files is required"}
    assert len(file_ids(http, oh, m.pmid)) == 2


def test_delete_all_files_json_true(oh, http, new_member):
    """§2.8: a JSON boolean works too."""
    m = new_member(files=2)
    r = http.post(DELETE, headers=bearer(m.access_token), json={"all_files": True})
    assert len(r.json()["ids"]) == 2


def test_delete_foreign_or_missing_file_is_not_an_error(oh, http, new_member):
    """§2.8: another member's file, a nonexistent id, a basename with no match → {"ids":[]}."""
    m, other = new_member(files=1), new_member()
    (theirs,) = oh.add_files(other.pmid, count=1, basename="theirs.csv")
    for data in ({"file_id": str(theirs)}, {"file_id": "987654"}, {"file_basename": "theirs.csv"}):
        r = http.post(DELETE, headers=bearer(m.access_token), data=data)
        assert r.status_code == 200, r.text
        assert r.json() == {"ids": []}
    assert file_ids(http, oh, other.pmid) == [theirs]


def test_delete_only_touches_this_projects_files(oh, http, new_member, project_settings):
    """§2.8: only files uploaded by *this* project are considered, not shared sources' files."""
    project_settings(requested_sources=["direct-sharing-91"])
    m = new_member()
    own = oh.add_files(m.pmid, count=2, basename="x.csv")
    shared = oh.add_files(m.pmid, count=2, basename="x.csv", source="direct-sharing-91")
    r = http.post(DELETE, headers=bearer(m.access_token), data={"file_id": shared[0]})
    assert r.json() == {"ids": []}
    r = http.post(DELETE, headers=bearer(m.access_token), data={"file_basename": "x.csv"})
    assert sorted(r.json()["ids"]) == own
    r = http.post(DELETE, headers=bearer(m.access_token), data={"all_files": "true"})
    assert r.json() == {"ids": []}
    assert file_ids(http, oh, m.pmid) == shared


def test_delete_master_token(oh, http, new_member):
    """§2.8: master token with project_member_id."""
    m = new_member(files=2)
    r = http.post(
        DELETE,
        headers=bearer(oh.master_token),
        data={"project_member_id": m.pmid, "all_files": "true"},
    )
    assert r.status_code == 200, r.text
    assert len(r.json()["ids"]) == 2


@pytest.mark.parametrize(
    ("data", "body"),
    [
        ({}, {"missing_field": "one of file_id, file_basename, or all_files is required"}),
        (
            {"file_id": "FILE", "all_files": "true"},
            {"too_many": "one of file_id, file_basename, or all_files is required"},
        ),
        (
            {"file_id": "FILE", "file_basename": "data.csv"},
            {"too_many": "one of file_id, file_basename, or all_files is required"},
        ),
        ({"file_id": "abc"}, {"file_id": ["Enter a whole number."]}),
    ],
    ids=["missing", "id+all", "id+basename", "not-int"],
)
def test_delete_errors(oh, http, new_member, data, body):
    """§2.8: DRF-style errors with plain-string values; nothing deleted."""
    m = new_member()
    (fid,) = oh.add_files(m.pmid, count=1, basename="data.csv")
    data = {k: (str(fid) if v == "FILE" else v) for k, v in data.items()}
    r = http.post(DELETE, headers=bearer(m.access_token), data=data)
    assert r.status_code == 400, r.text
    assert r.json() == body
    assert file_ids(http, oh, m.pmid) == [fid]


@pytest.mark.parametrize("pmid", ["1234", "99999999"])
def test_delete_master_invalid_member(oh, http, new_member, pmid):
    """§2.8: ``project_member_id=1234`` (as recorded) or unknown → invalid."""
    new_member(files=1)
    r = http.post(
        DELETE,
        headers=bearer(oh.master_token),
        data={"project_member_id": pmid, "all_files": "true"},
    )
    assert r.status_code == 400, r.text
    assert r.json() == MEMBER_INVALID
