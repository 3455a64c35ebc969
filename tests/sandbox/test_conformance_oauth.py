"""Conformance: OAuth2 authorize page and token endpoint (spec §1.1–§1.4)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

import httpx
import pytest

from .conftest import (
    API,
    AUTHORIZE,
    DEFAULT_SCOPES,
    INVALID_TOKEN,
    REALM,
    REALM_INVALID,
    REDIRECT_URI,
    TOKEN,
    advance_clock,
    assert_auth_error,
    assert_token_headers,
    bearer,
    code_from,
    consent_form,
    query,
    without_query,
)

TOKEN_CHARS = re.compile(r"[A-Za-z0-9]{30}")


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def exchange(http, oh, code, *, auth="basic", **extra):
    data = {"grant_type": "authorization_code", "code": code, **extra}
    if auth == "basic":
        return http.post(TOKEN, data=data, auth=(oh.client_id, oh.client_secret))
    if auth == "form":
        data.update(client_id=oh.client_id, client_secret=oh.client_secret)
    return http.post(TOKEN, data=data)


def refresh(http, oh, refresh_token, **extra):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    return http.post(TOKEN, data=data, auth=(oh.client_id, oh.client_secret))


def assert_token_error(response, status, body):
    assert response.status_code == status, response.text
    assert response.json() == body
    assert_token_headers(response)


def assert_token_success(response, scopes=DEFAULT_SCOPES):
    assert response.status_code == 200, response.text
    assert_token_headers(response)
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "token_type", "scope", "refresh_token"}
    assert body["expires_in"] == 36000
    assert body["token_type"] == "Bearer"
    assert frozenset(body["scope"].split(" ")) == scopes
    assert TOKEN_CHARS.fullmatch(body["access_token"]), body["access_token"]
    assert TOKEN_CHARS.fullmatch(body["refresh_token"]), body["refresh_token"]
    return body


def authorize_params(oh, **extra):
    return {"client_id": oh.client_id, "response_type": "code", **extra}


# --- §1.1 authorize page ------------------------------------------------------------------


def test_authorize_page_is_an_html_form_carrying_the_request(oh, http, new_member):
    """§1.1: a valid request shows the consent form with every OAuth param as a hidden field."""
    m = new_member()
    params = authorize_params(
        oh,
        redirect_uri=REDIRECT_URI,
        state="st-1",
        code_challenge=s256("v" * 50),
        code_challenge_method="S256",
    )
    r = http.get(AUTHORIZE, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    form = consent_form(r.text)
    hidden = dict(form.hidden)
    for key, value in params.items():
        assert hidden.get(key) == value, (key, form.hidden)
    assert m.pmid in form.fields.get("member", []), form.fields
    assert "new_username" in form.fields
    labels = {value: label for name, value, label in form.buttons if name == "action"}
    assert labels.get("authorize") == "Authorize project"
    assert labels.get("deny") == "Deny"


def test_authorize_success_redirect(oh, http, new_member, authorize_page):
    """§1.1: 302 to redirect_uri?code=<30 chars>&state=<state>&origin=external."""
    m = new_member()
    r = authorize_page(authorize_params(oh, redirect_uri=REDIRECT_URI, state="xyz"), member=m.pmid)
    assert r.status_code == 302, r.text
    location = r.headers["location"]
    assert without_query(location) == REDIRECT_URI
    params = query(location)
    assert [k for k, _ in params] == ["code", "state", "origin"]
    params = dict(params)
    assert TOKEN_CHARS.fullmatch(params["code"])
    assert params["state"] == "xyz"
    assert params["origin"] == "external"


def test_authorize_without_state_or_redirect_uri(oh, http, new_member, authorize_page):
    """§1.1: redirect_uri defaults to the registered one; no state, no state param."""
    m = new_member()
    r = authorize_page(authorize_params(oh), member=m.pmid)
    assert r.status_code == 302, r.text
    assert without_query(r.headers["location"]) == REDIRECT_URI
    assert [k for k, _ in query(r.headers["location"])] == ["code", "origin"]


def test_authorize_origin_open_humans(oh, http, new_member, authorize_page):
    """§1.1: ``origin=open-humans`` is the one recognised value; anything else is external."""
    m = new_member()
    r = authorize_page(authorize_params(oh, origin="open-humans"), member=m.pmid)
    assert dict(query(r.headers["location"]))["origin"] == "open-humans"
    r = authorize_page(authorize_params(oh, origin="elsewhere"), member=m.pmid)
    assert dict(query(r.headers["location"]))["origin"] == "external"


def test_authorize_creates_a_new_member(oh, http, authorize_page):
    """§1.1: consenting as a new person creates a member; the code then yields tokens."""
    r = authorize_page(authorize_params(oh), new_username="newcomer")
    code = code_from(r)
    body = assert_token_success(exchange(http, oh, code))
    me = http.get(API + "exchange-member/", headers=bearer(body["access_token"])).json()
    assert re.fullmatch(r"\d{8}", me["project_member_id"])
    listed = http.get(API + "members/", params={"access_token": oh.master_token}).json()
    assert [i["project_member_id"] for i in listed["results"]] == [me["project_member_id"]]


def test_removed_member_rejoins_with_same_id(oh, http, new_member, authorize_page):
    """§2.5: a removed member can authorize again and keeps the same project_member_id."""
    m = new_member()
    assert http.post(API + "remove-members/", headers=bearer(m.access_token)).status_code == 200
    code = code_from(authorize_page(authorize_params(oh), member=m.pmid))
    body = assert_token_success(exchange(http, oh, code))
    me = http.get(API + "exchange-member/", headers=bearer(body["access_token"])).json()
    assert me["project_member_id"] == m.pmid
    listed = http.get(API + "members/", params={"access_token": oh.master_token}).json()
    assert [i["project_member_id"] for i in listed["results"]] == [m.pmid]


def test_authorize_unknown_client_id_is_404(oh, http):
    """§1.1 check 1: unknown client_id → HTML 404, no redirect."""
    r = http.get(AUTHORIZE, params={"client_id": "nope", "response_type": "code"})
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "location" not in r.headers


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://evil.example/openhumans/complete",
        "http://localhost:8000/elsewhere",
        "https://localhost:8000/openhumans/complete",
        "javascript:alert(1)",
        "http://localhost:8001/openhumans/complete",
        "http://localhost:8000/openhumans/complete/",
    ],
)
def test_authorize_bad_redirect_uri_is_400_without_redirect(oh, http, redirect_uri):
    """§1.1: a redirect_uri that does not match → HTML 400 and no Location."""
    r = http.get(AUTHORIZE, params=authorize_params(oh, redirect_uri=redirect_uri, state="s"))
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/html")
    assert "location" not in r.headers


def test_authorize_redirect_uri_with_extra_query_is_accepted(oh, http, new_member, authorize_page):
    """§1.1: the registered URI's query parameters must be a subset of the requested one's."""
    m = new_member()
    uri = REDIRECT_URI + "?next=%2Fa"
    r = authorize_page(authorize_params(oh, redirect_uri=uri, state="s"), member=m.pmid)
    assert r.status_code == 302, r.text
    params = dict(query(r.headers["location"]))
    assert params["next"] == "/a"
    assert params["state"] == "s"
    assert_token_success(exchange(http, oh, params["code"], redirect_uri=uri))


@pytest.mark.parametrize("registered", ["http://127.0.0.1/cb", "http://[::1]/cb"])
def test_authorize_loopback_ip_accepts_any_port(registered):
    """§1.1: a registered ``http://127.0.0.1/...`` or ``http://[::1]/...`` accepts any port."""
    from openhumans.sandbox import Sandbox

    host = registered.split("/")[2]
    with (
        Sandbox(client_id="c", client_secret="s", redirect_uri=registered, port=0) as box,
        httpx.Client(base_url=box.base_url, timeout=15) as client,
    ):
        ok = client.get(
            AUTHORIZE,
            params={
                "client_id": "c",
                "response_type": "code",
                "redirect_uri": f"http://{host}:54321/cb",
            },
        )
        assert ok.status_code == 200, ok.text
        bad = client.get(
            AUTHORIZE,
            params={
                "client_id": "c",
                "response_type": "code",
                "redirect_uri": f"http://{host}:54321/other",
            },
        )
        assert bad.status_code == 400


def test_authorize_inactive_project(oh, http, project_settings):
    """§1.1 check 2: an inactive project → 302 to /direct-sharing/authorize-inactive/."""
    project_settings(active=False)
    r = http.get(AUTHORIZE, params=authorize_params(oh, state="s"))
    assert r.status_code == 302, r.text
    location = httpx.URL(str(r.url)).join(r.headers["location"])
    assert location.path == "/direct-sharing/authorize-inactive/"
    assert "code" not in dict(query(str(location)))


def test_authorize_deny(oh, http, new_member, authorize_page):
    """§1.1: deny → ?error=access_denied&state=..., with no origin."""
    m = new_member()
    r = authorize_page(authorize_params(oh, state="abc"), member=m.pmid, action="deny")
    assert r.status_code == 302, r.text
    assert without_query(r.headers["location"]) == REDIRECT_URI
    assert query(r.headers["location"]) == [("error", "access_denied"), ("state", "abc")]


def test_authorize_response_type_token(oh, http):
    """§1.1: response_type=token sends the browser back with error=unauthorized_client."""
    r = http.get(
        AUTHORIZE, params={"client_id": oh.client_id, "response_type": "token", "state": "s"}
    )
    assert r.status_code == 302, r.text
    assert without_query(r.headers["location"]) == REDIRECT_URI
    assert dict(query(r.headers["location"]))["error"] == "unauthorized_client"


def test_authorize_unknown_scope(oh, http):
    """§1.1: an unknown scope sends the browser back with error=invalid_scope."""
    r = http.get(AUTHORIZE, params=authorize_params(oh, scope="read teleport", state="s"))
    assert r.status_code == 302, r.text
    assert without_query(r.headers["location"]) == REDIRECT_URI
    assert dict(query(r.headers["location"]))["error"] == "invalid_scope"


# --- §1.2 token endpoint: authorization_code ---------------------------------------------


def test_token_exchange_with_basic_auth(oh, http, new_member, get_code):
    """§1.2: Basic client auth; body keys, expires_in 36000, default scopes, headers."""
    m = new_member()
    code = get_code(m.pmid, redirect_uri=REDIRECT_URI)
    body = assert_token_success(exchange(http, oh, code, redirect_uri=REDIRECT_URI))
    r = http.get(API + "exchange-member/", headers=bearer(body["access_token"]))
    assert r.status_code == 200
    assert r.json()["project_member_id"] == m.pmid


def test_token_exchange_with_form_client_auth(oh, http, new_member, get_code):
    """§1.2: client_id + client_secret in the form body also work."""
    m = new_member()
    code = get_code(m.pmid)
    assert_token_success(exchange(http, oh, code, auth="form"))


def test_token_exchange_redirect_uri_may_be_omitted(oh, http, new_member, get_code):
    """§1.2: redirect_uri may be left out if authorize used the registered default."""
    m = new_member()
    assert_token_success(exchange(http, oh, get_code(m.pmid)))


def test_token_exchange_narrow_scope(oh, http, new_member, get_code):
    """§1.2: the granted scope is the one asked for at authorize."""
    m = new_member()
    code = get_code(m.pmid, scope="read write")
    assert_token_success(exchange(http, oh, code), scopes=frozenset({"read", "write"}))


# --- §1.3 token endpoint errors ----------------------------------------------------------


@pytest.mark.parametrize("who", ["unknown client", "wrong secret", "no credentials"])
def test_token_invalid_client(oh, http, new_member, get_code, who):
    """§1.3 row 1: 401 invalid_client with ``WWW-Authenticate: Bearer error="invalid_client"``."""
    m = new_member()
    data = {"grant_type": "authorization_code", "code": get_code(m.pmid)}
    auth = {
        "unknown client": ("someone-else", oh.client_secret),
        "wrong secret": (oh.client_id, "not-the-secret"),
        "no credentials": None,
    }[who]
    r = http.post(TOKEN, data=data, auth=auth)
    assert_token_error(r, 401, {"error": "invalid_client"})
    assert r.headers.get("www-authenticate") == 'Bearer error="invalid_client"'


def test_token_invalid_client_in_form(oh, http, new_member, get_code):
    """§1.3 row 1: a wrong secret in the form body is invalid_client too."""
    m = new_member()
    r = http.post(
        TOKEN,
        data={
            "grant_type": "authorization_code",
            "code": get_code(m.pmid),
            "client_id": oh.client_id,
            "client_secret": "wrong",
        },
    )
    assert_token_error(r, 401, {"error": "invalid_client"})


def test_token_bad_code(oh, http):
    """§1.3 row 2: an unknown code → 400 invalid_grant."""
    assert_token_error(exchange(http, oh, "x" * 30), 400, {"error": "invalid_grant"})


def test_token_code_is_single_use(oh, http, new_member, get_code):
    """§1.3 row 2 / §1.1: codes are single-use."""
    m = new_member()
    code = get_code(m.pmid)
    assert_token_success(exchange(http, oh, code))
    assert_token_error(exchange(http, oh, code), 400, {"error": "invalid_grant"})


def test_token_expired_code(oh, http, new_member, get_code):
    """§1.3 row 2 / §1.6: codes live 1800 s; an older one → 400 invalid_grant."""
    m = new_member()
    fresh, stale = get_code(m.pmid), get_code(m.pmid)
    advance_clock(oh, 1800 - 60)
    assert_token_success(exchange(http, oh, fresh))
    advance_clock(oh, 120)
    assert_token_error(exchange(http, oh, stale), 400, {"error": "invalid_grant"})


def test_token_redirect_uri_mismatch(oh, http, new_member, get_code):
    """§1.3 row 4: redirect_uri differs from the one used at authorize."""
    m = new_member()
    code = get_code(m.pmid, redirect_uri=REDIRECT_URI)
    r = exchange(http, oh, code, redirect_uri=REDIRECT_URI + "/other")
    assert_token_error(
        r, 400, {"error": "invalid_request", "error_description": "Mismatching redirect URI."}
    )


def test_token_redirect_uri_required_when_authorize_used_another(oh, http, new_member, get_code):
    """§1.2: left out only if authorize used the registered default; otherwise identical."""
    m = new_member()
    uri = REDIRECT_URI + "?next=%2Fa"
    code = get_code(m.pmid, redirect_uri=uri)
    assert_token_error(
        exchange(http, oh, code),
        400,
        {"error": "invalid_request", "error_description": "Mismatching redirect URI."},
    )


def test_token_explicit_default_redirect_uri(oh, http, new_member, get_code):
    """§1.2: authorize without redirect_uri, token naming the registered one: accepted."""
    m = new_member()
    assert_token_success(exchange(http, oh, get_code(m.pmid), redirect_uri=REDIRECT_URI))


def test_token_missing_code(oh, http):
    """§1.3 row 5: ``code`` missing."""
    r = http.post(
        TOKEN, data={"grant_type": "authorization_code"}, auth=(oh.client_id, oh.client_secret)
    )
    assert_token_error(
        r, 400, {"error": "invalid_request", "error_description": "Missing code parameter."}
    )


def test_token_missing_grant_type(oh, http, new_member, get_code):
    """§1.3 row 6: ``grant_type`` missing."""
    m = new_member()
    r = http.post(TOKEN, data={"code": get_code(m.pmid)}, auth=(oh.client_id, oh.client_secret))
    assert_token_error(r, 400, {"error": "unsupported_grant_type"})


def test_token_json_body_is_not_parsed(oh, http, new_member, get_code):
    """§1.2 / §1.3 row 6: a JSON body counts as having no grant_type."""
    m = new_member()
    r = http.post(
        TOKEN,
        json={"grant_type": "authorization_code", "code": get_code(m.pmid)},
        auth=(oh.client_id, oh.client_secret),
    )
    assert_token_error(r, 400, {"error": "unsupported_grant_type"})


@pytest.mark.parametrize(
    ("grant_type", "expected"),
    [
        # §6 (from a run of the real server): oauthlib checks the user's credentials before
        # the grant type; sandbox members have no password, so they are always wrong.
        ("password", {"error": "invalid_grant", "error_description": "Invalid credentials given."}),
        ("client_credentials", {"error": "unauthorized_client"}),
    ],
)
def test_token_other_grants_refused(oh, http, grant_type, expected):
    """§1.3 last row, §6: only the code and refresh grants are allowed."""
    r = http.post(
        TOKEN,
        data={"grant_type": grant_type, "username": "u", "password": "p"},
        auth=(oh.client_id, oh.client_secret),
    )
    assert r.status_code == 400, r.text
    assert_token_headers(r)
    assert r.json() == expected


@pytest.mark.parametrize("method", ["S256", "plain", None])
def test_pkce_right_verifier(oh, http, new_member, get_code, method):
    """§1.1/§1.3: PKCE S256 and plain (the default when the method is left out)."""
    m = new_member()
    verifier = secrets.token_urlsafe(48)
    params = {"code_challenge": s256(verifier) if method == "S256" else verifier}
    if method:
        params["code_challenge_method"] = method
    code = get_code(m.pmid, **params)
    assert_token_success(exchange(http, oh, code, code_verifier=verifier))


@pytest.mark.parametrize("method", ["S256", "plain"])
def test_pkce_wrong_verifier(oh, http, new_member, get_code, method):
    """§1.3 row 8: a wrong verifier → 400 invalid_grant."""
    m = new_member()
    verifier = secrets.token_urlsafe(48)
    challenge = s256(verifier) if method == "S256" else verifier
    code = get_code(m.pmid, code_challenge=challenge, code_challenge_method=method)
    r = exchange(http, oh, code, code_verifier=secrets.token_urlsafe(48))
    assert_token_error(r, 400, {"error": "invalid_grant"})


def test_pkce_s256_challenge_used_as_plain_verifier(oh, http, new_member, get_code):
    """§1.3 row 8: sending the S256 challenge itself as the verifier must not pass."""
    m = new_member()
    challenge = s256(secrets.token_urlsafe(48))
    code = get_code(m.pmid, code_challenge=challenge, code_challenge_method="S256")
    assert_token_error(
        exchange(http, oh, code, code_verifier=challenge), 400, {"error": "invalid_grant"}
    )


def test_pkce_missing_verifier(oh, http, new_member, get_code):
    """§1.3 row 7: challenge stored, no code_verifier."""
    m = new_member()
    code = get_code(m.pmid, code_challenge=s256("v" * 50), code_challenge_method="S256")
    assert_token_error(
        exchange(http, oh, code),
        400,
        {"error": "invalid_request", "error_description": "Code verifier required."},
    )


# --- §1.4 refresh -------------------------------------------------------------------------


def test_refresh_rotates_both_tokens(oh, http, new_member, get_code):
    """§1.4: new pair; old refresh → invalid_grant; old access → 401 Invalid token."""
    m = new_member()
    old = assert_token_success(exchange(http, oh, get_code(m.pmid)))
    assert http.get(API, headers=bearer(old["access_token"])).status_code == 200

    new = assert_token_success(refresh(http, oh, old["refresh_token"]))
    assert new["access_token"] != old["access_token"]
    assert new["refresh_token"] != old["refresh_token"]

    assert_auth_error(
        http.get(API, headers=bearer(old["access_token"])), INVALID_TOKEN, REALM_INVALID
    )
    assert_token_error(refresh(http, oh, old["refresh_token"]), 400, {"error": "invalid_grant"})
    assert http.get(API, headers=bearer(new["access_token"])).status_code == 200
    assert_token_success(refresh(http, oh, new["refresh_token"]))


def test_refresh_kills_only_its_own_access_token(oh, http, new_member):
    """§1.4: the access token deleted at refresh is the one paired with that refresh token."""
    m = new_member()
    other = oh.issue_tokens(m.pmid)  # a second device of the same member
    assert_token_success(refresh(http, oh, m.refresh_token))
    assert http.get(API, headers=bearer(m.access_token)).status_code == 401
    assert http.get(API, headers=bearer(other["access_token"])).status_code == 200
    assert_token_success(refresh(http, oh, other["refresh_token"]))


def test_refresh_with_form_client_auth(oh, http, new_member):
    """§1.4: the same client authentication as §1.2 (form variant)."""
    m = new_member()
    r = http.post(
        TOKEN,
        data={
            "grant_type": "refresh_token",
            "refresh_token": m.refresh_token,
            "client_id": oh.client_id,
            "client_secret": oh.client_secret,
        },
    )
    assert_token_success(r)


def test_refresh_after_access_token_expired(oh, http, new_member):
    """§1.4: refresh tokens do not expire by time; an expired access token can be renewed."""
    m = new_member()
    oh.expire_access_tokens(m.pmid)
    body = assert_token_success(refresh(http, oh, m.refresh_token))
    assert http.get(API, headers=bearer(body["access_token"])).status_code == 200


def test_refresh_narrower_scope(oh, http, new_member):
    """§1.4: an optional narrower ``scope=`` is allowed."""
    m = new_member()
    assert_token_success(
        refresh(http, oh, m.refresh_token, scope="read"), scopes=frozenset({"read"})
    )


def test_refresh_unknown_token(oh, http):
    """§1.3 row 3: unknown refresh token → 400 invalid_grant."""
    assert_token_error(refresh(http, oh, "r" * 30), 400, {"error": "invalid_grant"})


def test_refresh_token_dies_when_member_leaves(oh, http, new_member):
    """§1.3 row 3 / §1.4: leaving deletes the member's refresh tokens."""
    m = new_member()
    oh.leave(m.pmid)
    assert_token_error(refresh(http, oh, m.refresh_token), 400, {"error": "invalid_grant"})


def test_refresh_needs_client_auth(oh, http, new_member):
    """§1.2/§1.4: no client credentials → 401 invalid_client, token left intact."""
    m = new_member()
    r = http.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": m.refresh_token})
    assert_token_error(r, 401, {"error": "invalid_client"})
    assert_token_success(refresh(http, oh, m.refresh_token))


def test_access_token_lives_ten_hours(oh, http, new_member):
    """§A.1 / §1.6: a user token lives 36000 s, then ``Expired token.``."""
    m = new_member()
    advance_clock(oh, 36000 - 60)
    assert http.get(API, headers=bearer(m.access_token)).status_code == 200
    advance_clock(oh, 120)
    assert_auth_error(http.get(API, headers=bearer(m.access_token)), "Expired token.", REALM)


def test_configured_access_token_lifetime(oh, http, new_member, get_code):
    """Issue 3: lifetime configurable; expired token → ``Expired token.``."""
    oh.configure(access_token_lifetime=120)
    try:
        m = new_member()
        body = exchange(http, oh, get_code(m.pmid)).json()
        assert body["expires_in"] == 120
        refreshed = refresh(http, oh, body["refresh_token"]).json()
        assert refreshed["expires_in"] == 120
        advance_clock(oh, 60)
        assert http.get(API, headers=bearer(refreshed["access_token"])).status_code == 200
        advance_clock(oh, 120)
        r = http.get(API, headers=bearer(refreshed["access_token"]))
        assert_auth_error(r, "Expired token.", REALM)
    finally:
        oh.configure(access_token_lifetime=36000)


def test_token_endpoint_is_post_only(oh, http):
    """§1.2: the token endpoint is a POST endpoint."""
    r = http.get(TOKEN, params={"grant_type": "refresh_token", "refresh_token": "x"})
    assert r.status_code == 405
