"""Conformance: the conventions every project API call shares (spec §A.2–§A.5)."""

from __future__ import annotations

import json
import re
from urllib.parse import urljoin

import pytest

from .conftest import (
    API,
    EXPIRED_TOKEN,
    INVALID_TOKEN,
    MEMBER_INVALID,
    NO_CREDENTIALS,
    REALM,
    REALM_INVALID,
    TOKEN,
    advance_clock,
    assert_auth_error,
    assert_never_cache,
    bearer,
)

# Every endpoint under /api/direct-sharing/, with the method it answers.
ENDPOINTS = [
    ("GET", API),
    ("GET", API + "exchange-member/"),
    ("GET", API + "members/"),
    ("POST", API + "message/"),
    ("POST", API + "remove-members/"),
    ("POST", API + "files/upload/direct/"),
    ("POST", API + "files/upload/complete/"),
    ("POST", API + "files/upload/"),
    ("POST", API + "files/delete/"),
]
USER_ENDPOINTS = [e for e in ENDPOINTS if e[1] != API + "members/"]


def ids(endpoints):
    return [f"{m} {p.removeprefix(API) or 'project/'}" for m, p in endpoints]


# --- §A.2 how to send the token ---------------------------------------------------------


def test_query_token_overrides_a_valid_header(oh, http, new_member):
    """§A.2: ?access_token= is copied over any Authorization header, even a good one."""
    m = new_member()
    r = http.get(API, params={"access_token": "x" * 30}, headers=bearer(m.access_token))
    assert_auth_error(r, INVALID_TOKEN, REALM_INVALID)


def test_query_token_overrides_a_bad_header(oh, http, new_member):
    """§A.2: a valid query token wins over a bogus header."""
    m = new_member()
    r = http.get(API, params={"access_token": m.access_token}, headers=bearer("x" * 30))
    assert r.status_code == 200, r.text


def test_query_token_works_on_post(oh, http, new_member):
    """§A.2: the query parameter is read for every request, POSTs included."""
    m = new_member()
    r = http.post(API + "message/", params={"access_token": m.access_token}, data={"message": "hi"})
    assert r.status_code == 200, r.text
    assert r.json() == "success"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_header_scheme_is_case_insensitive(oh, http, new_member, scheme):
    """§A.2: ``Authorization: Bearer <token>`` with a case-insensitive scheme."""
    m = new_member()
    r = http.get(API, headers={"Authorization": f"{scheme} {m.access_token}"})
    assert r.status_code == 200, r.text


def test_user_token_in_form_body_is_read(oh, http, new_member):
    """§A.2 (corrected from a run of the real server): oauthlib reads a user token from a
    form-encoded body."""
    m = new_member()
    r = http.post(API + "message/", data={"access_token": m.access_token, "message": "hi"})
    assert r.status_code == 200, r.text
    assert r.json() == "success"
    assert [e["project_member_id"] for e in oh.inbox()] == [m.pmid]


def test_user_token_in_multipart_body_is_read(oh, http, new_member):
    """§A.2: a multipart body's ``access_token`` field authenticates an upload too."""
    m = new_member()
    r = http.post(
        API + "files/upload/",
        data={"access_token": m.access_token, "metadata": '{"description":"d","tags":[]}'},
        files={"data_file": ("a.txt", b"abc")},
    )
    assert r.status_code == 201, r.text
    assert [f["id"] for f in oh.files(m.pmid)] == [r.json()["id"]]


def test_user_token_in_form_body_is_read_on_get(oh, http, new_member):
    """§A.2: on any method, even ``GET exchange-member/`` with a form body."""
    m = new_member()
    r = http.request(
        "GET",
        API + "exchange-member/",
        content=f"access_token={m.access_token}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["project_member_id"] == m.pmid


def test_token_in_json_body_is_not_read(oh, http, new_member):
    """§A.2: a JSON body is not looked at for a token: no credentials."""
    m = new_member()
    r = http.post(API + "message/", json={"access_token": m.access_token, "message": "hi"})
    assert_auth_error(r, NO_CREDENTIALS, REALM)
    assert oh.inbox() == []


def test_master_token_in_form_body_is_not_read(oh, http):
    """§A.2: the master-token check never reads a body; the OAuth2 check looked it up as
    a user token and left its error attributes."""
    r = http.post(API + "message/", data={"access_token": oh.master_token, "message": "hi"})
    assert_auth_error(r, NO_CREDENTIALS, REALM_INVALID)
    assert oh.inbox() == []


def test_header_wins_over_body_token(oh, http, new_member):
    """§A.2: with an ``Authorization`` header the body's token is not consulted."""
    m = new_member()
    r = http.post(
        API + "message/",
        headers={"Authorization": "Bearer nosuchtoken"},
        data={"access_token": m.access_token, "message": "hi"},
    )
    assert_auth_error(r, INVALID_TOKEN, REALM_INVALID)
    assert oh.inbox() == []


@pytest.mark.parametrize(("method", "path"), USER_ENDPOINTS, ids=ids(USER_ENDPOINTS))
def test_master_token_accepted_where_user_tokens_are(oh, http, method, path):
    """§A.1: the master token works on every endpoint; it passes authentication."""
    r = http.request(method, path, headers=bearer(oh.master_token))
    assert r.status_code != 401, r.text
    assert r.status_code < 500, r.text


# --- §A.3 authentication errors -----------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ENDPOINTS, ids=ids(ENDPOINTS))
def test_no_token(oh, http, method, path):
    """§A.3 row 1: no token at all."""
    r = http.request(method, path)
    assert_auth_error(r, NO_CREDENTIALS, REALM)


@pytest.mark.parametrize(("method", "path"), USER_ENDPOINTS, ids=ids(USER_ENDPOINTS))
def test_expired_user_token(oh, http, new_member, method, path):
    """§A.3 row 2: a user token that exists but has expired."""
    m = new_member()
    oh.expire_access_tokens(m.pmid)
    r = http.request(method, path, headers=bearer(m.access_token))
    assert_auth_error(r, EXPIRED_TOKEN, REALM)


@pytest.mark.parametrize(("method", "path"), USER_ENDPOINTS, ids=ids(USER_ENDPOINTS))
def test_unknown_token(oh, http, method, path):
    """§A.3 row 3: neither a live user token nor a master token."""
    r = http.request(method, path, headers=bearer("a" * 30))
    assert_auth_error(r, INVALID_TOKEN, REALM_INVALID)


def test_unknown_token_on_members(oh, http):
    """§A.3 row 3: on ``members/`` only the master check runs, so the header is bare."""
    r = http.get(API + "members/", params={"access_token": "a" * 64})
    assert_auth_error(r, INVALID_TOKEN, REALM)


def test_user_token_on_members(oh, http, new_member):
    """§A.3 row 5 / §2.3: a user token sent to ``members/``."""
    m = new_member()
    r = http.get(API + "members/", params={"access_token": m.access_token})
    assert_auth_error(r, INVALID_TOKEN, REALM)


@pytest.mark.parametrize(("method", "path"), ENDPOINTS, ids=ids(ENDPOINTS))
def test_bearer_without_token(oh, http, method, path):
    """§A.3 row 6: ``Authorization: Bearer`` and nothing after it."""
    r = http.request(method, path, headers={"Authorization": "Bearer"})
    assert_auth_error(r, "Invalid token header. No credentials provided.", REALM)


@pytest.mark.parametrize(("method", "path"), ENDPOINTS, ids=ids(ENDPOINTS))
def test_bearer_with_spaces(oh, http, method, path):
    """§A.3 row 7: ``Authorization: Bearer a b``."""
    r = http.request(method, path, headers={"Authorization": "Bearer a b"})
    assert_auth_error(r, "Invalid token header. Token string should not contain spaces.", REALM)


def test_deleted_user_token_is_invalid_not_expired(oh, http, new_member):
    """§A.3 note: a token deleted because the member left counts as unknown."""
    m = new_member()
    oh.leave(m.pmid)
    r = http.get(API, headers=bearer(m.access_token))
    assert_auth_error(r, INVALID_TOKEN, REALM_INVALID)


def test_expired_master_token(oh, http):
    """§A.3 row 4 / §A.1: a master token past its 24 h is ``Expired token.``."""
    token = oh.master_token
    advance_clock(oh, 24 * 3600 - 120)
    assert http.get(API, headers=bearer(token)).status_code == 200
    advance_clock(oh, 240)
    r = http.get(API, headers=bearer(token))
    assert_auth_error(r, EXPIRED_TOKEN, REALM_INVALID)


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", API), ("DELETE", API + "exchange-member/"), ("GET", API + "message/")],
)
def test_authentication_runs_before_method_check(oh, http, method, path):
    """§A.3 note: an unauthenticated request with the wrong method gets 401, not 405."""
    r = http.request(method, path)
    assert_auth_error(r, NO_CREDENTIALS, REALM)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", API),
        ("POST", API),
        ("DELETE", API + "exchange-member/"),
        ("GET", API + "message/"),
        ("PUT", API + "files/delete/"),
        ("PATCH", API + "remove-members/"),
    ],
)
def test_wrong_method_after_authentication_is_405(oh, http, new_member, method, path):
    """§A.3 note: an authenticated request with the wrong method gets 405 with a detail."""
    m = new_member()
    r = http.request(method, path, headers=bearer(m.access_token))
    assert r.status_code == 405, r.text
    assert r.json() == {"detail": f'Method "{method}" not allowed.'}


# --- §A.4 bodies, responses, headers -------------------------------------------------------


def _compact(response) -> bytes:
    return json.dumps(response.json(), separators=(",", ":"), ensure_ascii=False).encode()


def test_responses_are_compact_json(oh, http, new_member):
    """§A.4: compact JSON with ``Content-Type: application/json``, success and errors."""
    m = new_member(files=2)
    responses = [
        http.get(API, headers=bearer(m.access_token)),
        http.get(API + "exchange-member/", headers=bearer(m.access_token)),
        http.get(API + "members/", params={"access_token": oh.master_token}),
        http.get(API),  # 401
        http.post(API + "files/delete/", headers=bearer(m.access_token)),  # 400 DRF style
        http.post(API + "message/", headers=bearer(m.access_token)),  # 400 errors style
    ]
    for r in responses:
        assert r.headers["content-type"].startswith("application/json"), r.url
        assert r.content == _compact(r), (r.url, r.content[:200])


@pytest.mark.parametrize(
    ("method", "path", "data", "expected"),
    [
        ("GET", API, None, 200),
        ("GET", API + "exchange-member/", None, 200),
        ("POST", API + "message/", {"message": "hi"}, 200),
        ("POST", API + "message/", {}, 400),
        ("POST", API + "files/delete/", {}, 400),
    ],
)
def test_api_responses_are_never_cached(oh, http, new_member, method, path, data, expected):
    """§A.4: ``never_cache`` headers on successes and on errors."""
    m = new_member()
    r = http.request(method, path, headers=bearer(m.access_token), data=data)
    assert r.status_code == expected, r.text
    assert_never_cache(r)


def test_head_on_get_endpoints(oh, http, new_member):
    """§A.4: ``Allow: GET, HEAD, OPTIONS``: HEAD answers like GET, without a body."""
    m = new_member()
    r = http.head(API + "exchange-member/", headers=bearer(m.access_token))
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-type"].startswith("application/json")
    assert http.head(API).status_code == 401


def test_auth_errors_are_never_cached(oh, http):
    """§A.4: the 401 answers come from the views too, so they carry ``never_cache``."""
    assert_never_cache(http.get(API))
    assert_never_cache(http.get(API + "members/", params={"access_token": "x"}))


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        (API, "GET, HEAD, OPTIONS"),
        (API + "exchange-member/", "GET, HEAD, OPTIONS"),
        (API + "message/", "POST, OPTIONS"),
        (API + "files/delete/", "POST, OPTIONS"),
    ],
)
def test_allow_header(oh, http, new_member, path, allow):
    """§A.4: ``Allow`` lists the view's methods (visible on a 405)."""
    m = new_member()
    r = http.request("PUT", path, headers=bearer(m.access_token))
    assert r.status_code == 405
    assert r.headers.get("allow") == allow


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/direct-sharing/project"),
        ("GET", "/api/direct-sharing/project/exchange-member"),
        ("GET", "/api/direct-sharing/project/members"),
        ("POST", "/api/direct-sharing/project/message"),
        ("POST", "/api/direct-sharing/project/files/delete"),
        ("POST", "/oauth2/token"),
    ],
)
def test_missing_trailing_slash_redirects_301(oh, http, method, path):
    """§A.4: a missing trailing slash gives 301 to the slash URL, query string kept."""
    r = http.request(method, path, params={"access_token": "abc", "limit": "5"})
    assert r.status_code == 301, r.text
    target = urljoin(str(r.url), r.headers["location"])
    assert target == f"{oh.base_url}{path}/?access_token=abc&limit=5"


ORIGIN = "https://app.example.org"


def test_cors_on_api_responses(oh, http, new_member):
    """§A.4: django-cors-headers with allow-all covers ``^/api/.*$``."""
    m = new_member()
    for r in (
        http.get(API, headers={**bearer(m.access_token), "Origin": ORIGIN}),
        http.get(API, headers={"Origin": ORIGIN}),  # the 401 too: the middleware wraps it
    ):
        assert r.headers.get("access-control-allow-origin") in ("*", ORIGIN), dict(r.headers)


def test_cors_preflight_on_api(oh, http):
    """§A.4: a browser preflight to the API is answered by the CORS middleware, not a 401."""
    r = http.options(
        API + "message/",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.headers.get("access-control-allow-origin") in ("*", ORIGIN)
    allowed_headers = r.headers.get("access-control-allow-headers", "").lower()
    assert "authorization" in allowed_headers and "content-type" in allowed_headers
    assert "POST" in r.headers.get("access-control-allow-methods", "")


def test_no_cors_on_token_endpoint(oh, http):
    """§A.4: ``/oauth2/token/`` is not CORS-enabled."""
    r = http.post(TOKEN, headers={"Origin": ORIGIN}, data={"grant_type": "refresh_token"})
    assert "access-control-allow-origin" not in r.headers


def test_browsable_api_for_html_clients(oh, http, new_member):
    """§A.4: ``Accept: text/html`` or ``?format=api`` returns HTML; ``?format=json`` JSON."""
    m = new_member()
    r = http.get(API, headers={**bearer(m.access_token), "Accept": "text/html"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    r = http.get(API, params={"format": "api"}, headers=bearer(m.access_token))
    assert r.headers["content-type"].startswith("text/html")
    r = http.get(API, params={"format": "json"}, headers=bearer(m.access_token))
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["id_label"].startswith("direct-sharing-")


def test_frame_options_header(oh, http, new_member):
    """§A.4: API responses carry ``X-Frame-Options``."""
    m = new_member()
    assert http.get(API, headers=bearer(m.access_token)).headers.get("x-frame-options")


def test_drf_error_envelope(oh, http, new_member):
    """§A.4: uploads/delete/exchange-member put the field map at top level."""
    m = new_member()
    r = http.post(API + "files/upload/direct/", headers=bearer(m.access_token), data={})
    assert r.status_code == 400
    body = r.json()
    assert "errors" not in body
    assert body["filename"] == ["This field is required."]  # form errors are lists
    r = http.get(
        API + "exchange-member/",
        params={"project_member_id": "00000000"},
        headers=bearer(oh.master_token),
    )
    assert r.status_code == 400
    assert r.json() == MEMBER_INVALID  # the view's own errors are plain strings


def test_errors_envelope(oh, http, new_member):
    """§A.4: message/remove-members wrap the field map in ``{"errors": ...}``."""
    m = new_member()
    r = http.post(API + "message/", headers=bearer(m.access_token), data={})
    assert r.status_code == 400
    assert r.json() == {"errors": {"message": ["This field is required."]}}


@pytest.mark.parametrize("encoding", ["json", "form", "multipart"])
def test_all_three_body_encodings_are_parsed(oh, http, new_member, encoding):
    """§A.4: JSON, urlencoded and multipart bodies are all accepted."""
    m = new_member()
    fields = {"subject": "s", "message": f"via {encoding}"}
    if encoding == "json":
        r = http.post(API + "message/", headers=bearer(m.access_token), json=fields)
    elif encoding == "form":
        r = http.post(API + "message/", headers=bearer(m.access_token), data=fields)
    else:
        r = http.post(
            API + "message/",
            headers=bearer(m.access_token),
            data=fields,
            files={"unused": ("x.txt", b"x")},
        )
    assert r.status_code == 200, r.text
    assert [e["message"] for e in oh.inbox()] == [f"via {encoding}"]


def test_metadata_object_in_json_body_is_refused(oh, http, new_member):
    """§A.4: ``metadata`` must be a JSON *string* even inside a JSON body."""
    m = new_member()
    r = http.post(
        API + "files/upload/direct/",
        headers=bearer(m.access_token),
        json={"filename": "a.txt", "metadata": {"description": "d", "tags": ["t"]}},
    )
    assert r.status_code == 400, r.text
    assert r.json() == {"metadata": ["could not parse the uploaded metadata"]}


def test_metadata_string_in_json_body_is_accepted(oh, http, new_member):
    """§A.4 counterpart: the same metadata as a JSON string is fine."""
    m = new_member()
    r = http.post(
        API + "files/upload/direct/",
        headers=bearer(m.access_token),
        json={"filename": "a.txt", "metadata": json.dumps({"description": "d", "tags": ["t"]})},
    )
    assert r.status_code == 201, r.text


DATETIME_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")


def test_datetime_format(oh, http, new_member):
    """§A.4: ISO 8601 UTC with microseconds and ``Z``; ``.000000`` is left out."""
    m = new_member(files=3)
    body = http.get(API + "exchange-member/", headers=bearer(m.access_token)).json()
    members = http.get(API + "members/", params={"access_token": oh.master_token}).json()
    stamps = [body["created"]] + [f["created"] for f in body["data"]]
    stamps += [item["created"] for item in members["results"]]
    for stamp in stamps:
        assert DATETIME_Z.match(stamp), stamp
        assert not stamp.endswith(".000000Z"), stamp


# --- §A.5 which members count as valid ---------------------------------------------------


def test_project_member_id_is_eight_digits(oh, new_member):
    """§A.5: ``project_member_id`` is a string of 8 digits."""
    for _ in range(5):
        assert re.fullmatch(r"\d{8}", new_member().pmid)


@pytest.mark.parametrize("path", ["message/", "remove-members/"])
def test_revoked_member_is_invalid_for_message_and_remove(oh, http, new_member, path):
    """§A.5: message/remove-members accept only active members."""
    m = new_member()
    oh.leave(m.pmid)
    data = {"message": "hi", "project_member_ids": m.pmid}
    r = http.post(API + path, headers=bearer(oh.master_token), data=data)
    assert r.status_code == 400, r.text
    assert r.json() == {
        "errors": {"project_member_ids": [f"Invalid project member ID(s): {m.pmid}"]}
    }


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("files/upload/direct/", {"filename": "a.txt", "metadata": '{"description":"","tags":[]}'}),
        ("files/delete/", {"all_files": "true"}),
        ("files/upload/complete/", {"file_id": "FILE"}),
        ("files/upload/", {"metadata": '{"description":"","tags":[]}'}),
    ],
)
def test_revoked_member_is_invalid_for_files(oh, http, new_member, path, data):
    """§A.5: uploads/delete/complete need a joined, authorized, not revoked member."""
    m = new_member()
    (fid,) = oh.add_files(m.pmid, count=1)
    data = {k: (str(fid) if v == "FILE" else v) for k, v in data.items()}
    oh.leave(m.pmid)
    files = {"data_file": ("a.txt", b"a")} if path == "files/upload/" else None
    r = http.post(
        API + path,
        headers=bearer(oh.master_token),
        data={**data, "project_member_id": m.pmid},
        files=files,
    )
    assert r.status_code == 400, r.text
    assert r.json() == MEMBER_INVALID


def test_exchange_member_with_master_token_lists_revoked_member(oh, http, new_member):
    """§A.5: exchange-member with a master token does no state check."""
    m = new_member(files=2)
    oh.leave(m.pmid)
    r = http.get(
        API + "exchange-member/",
        params={"project_member_id": m.pmid},
        headers=bearer(oh.master_token),
    )
    assert r.status_code == 200, r.text
    assert r.json()["project_member_id"] == m.pmid
    assert len(r.json()["data"]) == 2


def test_message_ids_are_checked_for_length_not_digits(oh, http):
    """§A.5: the form accepts IDs of length 8 or 16 without checking they are digits."""
    r = http.post(
        API + "message/",
        headers=bearer(oh.master_token),
        json={"message": "hi", "project_member_ids": ["abcdefgh", "abcdefghijklmnop"]},
    )
    assert r.status_code == 400
    assert r.json() == {
        "errors": {
            "project_member_ids": ["Invalid project member ID(s): abcdefgh, abcdefghijklmnop"]
        }
    }
