"""OAuth2 against canned answers: the authorize URL, PKCE, the token endpoint."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import httpx
import pytest

from openhumans.client import (
    TokenSet,
    authorize_url,
    code_challenge_s256,
    exchange_code,
    make_code_verifier,
    refresh,
)
from openhumans.exceptions import (
    InvalidArgumentError,
    InvalidGrantError,
    OAuthError,
    OpenHumansAPIResponseError,
    OpenHumansConnectionError,
    ServerError,
)

from .client_fakes import (
    BASE,
    TOKEN_BODY,
    USER_TOKEN,
    Server,
    assert_no_secret,
    flaky,
    resp,
    token_server,
)

# -- spec §1.1: authorize URL, PKCE ------------------------------------------------------------


def test_authorize_url_points_at_open_humans_own_view():
    url = httpx.URL(
        authorize_url(
            "client-1",
            "http://localhost:8000/openhumans/complete",
            state="st4te",
            code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            scope=["read", "write"],
        )
    )
    assert str(url).startswith(
        "https://www.openhumans.org/direct-sharing/projects/oauth2/authorize/?"
    )
    assert dict(url.params) == {
        "client_id": "client-1",
        "response_type": "code",
        "redirect_uri": "http://localhost:8000/openhumans/complete",
        "state": "st4te",
        "scope": "read write",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    }


def test_authorize_url_under_a_prefixed_base_url_without_pkce():
    url = httpx.URL(authorize_url("c", "http://x/cb", state="s", base_url="http://127.0.0.1:9/oh"))
    assert url.path == "/oh/direct-sharing/projects/oauth2/authorize/"
    assert "code_challenge" not in url.params and "scope" not in url.params


def test_authorize_url_requires_state():
    with pytest.raises(InvalidArgumentError) as info:
        authorize_url("c", "http://x/cb", state="")
    assert info.value.argument == "state"


def test_pkce_s256_matches_rfc7636_appendix_b():
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert code_challenge_s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_code_verifiers_are_fresh_and_valid():
    first, second = make_code_verifier(), make_code_verifier()
    assert first != second and 43 <= len(first) <= 128
    assert len(code_challenge_s256(first)) == 43
    with pytest.raises(InvalidArgumentError):
        code_challenge_s256("too-short")


# -- spec §1.2–1.4: token endpoint -------------------------------------------------------------


def test_exchange_code_posts_a_form_with_basic_auth_and_returns_a_tokenset():
    server = token_server(resp(200, TOKEN_BODY, **{"Cache-Control": "no-store"}))
    before = datetime.now(UTC)
    tokens = exchange_code(
        code="c0de",
        client_id="client-1",
        client_secret="s3cret",
        redirect_uri="http://localhost:8000/openhumans/complete",
        code_verifier="v" * 43,
        base_url=BASE,
        transport=httpx.MockTransport(server),
    )
    (request,) = server.requests
    assert (
        request.headers["Authorization"] == "Basic " + base64.b64encode(b"client-1:s3cret").decode()
    )
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(server.bodies[0].decode()) == {
        "grant_type": ["authorization_code"],
        "code": ["c0de"],
        "redirect_uri": ["http://localhost:8000/openhumans/complete"],
        "code_verifier": ["v" * 43],
    }
    assert isinstance(tokens, TokenSet)
    assert tokens.access_token == USER_TOKEN and tokens.refresh_token == "REFRESHSECRET"
    assert tokens.scope == frozenset(
        {"read", "write", "american-gut", "go-viral", "pgp", "wildlife", "open-humans"}
    )
    assert tokens.expires_at.tzinfo is not None
    assert before + timedelta(seconds=35999) <= tokens.expires_at
    assert tokens.expires_at <= datetime.now(UTC) + timedelta(seconds=36000)
    assert 35990 <= tokens.expires_in <= 36000
    assert USER_TOKEN not in repr(tokens) and "REFRESHSECRET" not in repr(tokens)


def test_refresh_posts_the_refresh_grant():
    server = Server().on("POST", "/prefix/oauth2/token/", resp(200, TOKEN_BODY))
    tokens = refresh(
        refresh_token="REFRESHSECRET",
        client_id="client-1",
        client_secret="s3cret",
        base_url=f"{BASE}/prefix",
        transport=httpx.MockTransport(server),
    )
    assert server.requests[0].url.path == "/prefix/oauth2/token/"
    assert parse_qs(server.bodies[0].decode()) == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["REFRESHSECRET"],
    }
    assert tokens.token_type == "Bearer"


@pytest.mark.parametrize(
    ("status", "body", "exc", "error"),
    [
        (401, {"error": "invalid_client"}, OAuthError, "invalid_client"),
        (400, {"error": "invalid_grant"}, InvalidGrantError, "invalid_grant"),
        (401, {"error": "invalid_grant"}, InvalidGrantError, "invalid_grant"),  # 2018 servers
        (400, {"error": "unsupported_grant_type"}, OAuthError, "unsupported_grant_type"),
        (
            400,
            {"error": "invalid_request", "error_description": "Mismatching redirect URI."},
            OAuthError,
            "invalid_request",
        ),
        (
            400,
            {"error": "invalid_request", "error_description": "Code verifier required."},
            OAuthError,
            "invalid_request",
        ),
    ],
)
def test_token_endpoint_errors(status, body, exc, error):
    server = token_server(resp(status, body))
    with pytest.raises(exc) as info:
        refresh(
            refresh_token="REFRESHSECRET",
            client_id="client-1",
            client_secret="s3cret",
            base_url=BASE,
            transport=httpx.MockTransport(server),
        )
    assert type(info.value) is exc
    assert info.value.error == error
    assert info.value.status_code == status
    assert info.value.error_description == body.get("error_description", "")
    assert_no_secret(info.value)
    assert "s3cret" not in str(info.value)


def test_token_endpoint_5xx_is_server_error_and_not_retried():
    server = token_server(resp(503, "Service Unavailable"))
    with pytest.raises(ServerError):
        exchange_code(
            code="c",
            client_id="c",
            client_secret="s",
            redirect_uri="http://x/cb",
            base_url=BASE,
            transport=httpx.MockTransport(server),
        )
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"access_token": "a"},
        {"access_token": "a", "refresh_token": "r", "expires_in": 10**30},
        {"access_token": "", "refresh_token": "r", "expires_in": 36000},
        {"access_token": "a", "refresh_token": None, "expires_in": 36000},
        ["a", "r"],
    ],
    ids=["missing", "huge-expiry", "empty-token", "null-token", "list"],
)
def test_token_endpoint_malformed_success_is_a_response_error(body):
    server = token_server(resp(200, body))
    with pytest.raises(OpenHumansAPIResponseError, match="malformed"):
        refresh(
            refresh_token="r",
            client_id="c",
            client_secret="s",
            base_url=BASE,
            transport=httpx.MockTransport(server),
        )


def test_token_endpoint_unreachable_is_a_connection_error():
    server = token_server(flaky([httpx.ConnectError("refused")]))
    with pytest.raises(OpenHumansConnectionError):
        refresh(
            refresh_token="r",
            client_id="c",
            client_secret="s",
            base_url=BASE,
            transport=httpx.MockTransport(server),
        )
