"""OAuth2 against Open Humans: the authorize URL, the token endpoint, PKCE (RFC 7636).

Private: use ``openhumans.client``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterable
from urllib.parse import urlencode

import httpx

from openhumans.exceptions import InvalidArgumentError

from ._http import (
    DEFAULT_BASE_URL,
    DEFAULT_TOKEN_TIMEOUT,
    Requester,
    join_url,
    new_http_client,
    oauth_error_for,
    parse_base_url,
    parse_body,
)
from ._pool import shared_pool
from ._results import TokenSet

# spec §1.1: Open Humans' own view; the stock /oauth2/authorize/ creates no membership.
AUTHORIZE_PATH = "direct-sharing/projects/oauth2/authorize/"
TOKEN_PATH = "oauth2/token/"

_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def _require_str(argument: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(argument, "must be a non-empty string")
    return value


def make_code_verifier() -> str:
    """Return a fresh PKCE code verifier (86 URL-safe characters, RFC 7636 §4.1)."""
    return secrets.token_urlsafe(64)


def code_challenge_s256(verifier: str) -> str:
    """Return the S256 code challenge of ``verifier``; raise InvalidArgumentError if malformed."""
    if not isinstance(verifier, str) or not _VERIFIER.match(verifier):
        raise InvalidArgumentError("verifier", "must be 43-128 characters of [A-Za-z0-9-._~]")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(
    client_id: str,
    redirect_uri: str,
    *,
    state: str,
    code_challenge: str | None = None,
    scope: str | Iterable[str] | None = None,
    base_url: str = DEFAULT_BASE_URL,
) -> str:
    """Return the URL to send the member's browser to; raise InvalidArgumentError."""
    params = {
        "client_id": _require_str("client_id", client_id),
        "response_type": "code",
        "redirect_uri": _require_str("redirect_uri", redirect_uri),
        "state": _require_str("state", state),
    }
    if scope is not None:
        scopes = scope.split() if isinstance(scope, str) else list(scope)
        if not scopes or not all(isinstance(s, str) and s for s in scopes):
            raise InvalidArgumentError("scope", "must be a non-empty list of scope names")
        params["scope"] = " ".join(scopes)
    if code_challenge is not None:
        params["code_challenge"] = _require_str("code_challenge", code_challenge)
        params["code_challenge_method"] = "S256"
    url = join_url(parse_base_url(base_url), AUTHORIZE_PATH)
    return f"{url}?{urlencode(params)}"


def _token_request(
    data: dict[str, str],
    *,
    client_id: str,
    client_secret: str,
    base_url: str,
    timeout: float,
    transport: httpx.BaseTransport | None,
    shared: bool,
) -> TokenSet:
    auth = (_require_str("client_id", client_id), _require_str("client_secret", client_secret))
    if shared and transport is None:
        pool = shared_pool(base_url, timeout)
        return _post_token(pool.http, join_url(pool.base_url, TOKEN_PATH), data, auth, timeout)
    url = join_url(parse_base_url(base_url), TOKEN_PATH)
    with new_http_client(timeout, transport) as http:
        return _post_token(http, url, data, auth, timeout)


def _post_token(
    http: httpx.Client,
    url: httpx.URL,
    data: dict[str, str],
    auth: tuple[str, str],
    timeout: float,
) -> TokenSet:
    # POST: never retried (a code is single use and a refresh token rotates, spec §1.4).
    response = Requester(http, max_retries=0, deadline=timeout).send(
        # spec §1.2: form body (JSON is not parsed) and HTTP Basic client auth.
        "POST",
        url,
        errors=oauth_error_for,
        data=data,
        auth=auth,
    )
    return TokenSet.from_response(parse_body(response))


def exchange_code(
    *,
    code: str,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    code_verifier: str | None = None,
    base_url: str = DEFAULT_BASE_URL,
    timeout: float = DEFAULT_TOKEN_TIMEOUT,
    transport: httpx.BaseTransport | None = None,
    shared: bool = False,
) -> TokenSet:
    """Exchange an authorization code for tokens.

    ``shared=True`` sends it through the process's shared pool (see
    :meth:`OpenHumansClient.shared`). Raises InvalidGrantError (bad/used code, wrong
    verifier), OAuthError, ServerError,
    OpenHumansConnectionError, InvalidArgumentError.
    """
    data = {
        "grant_type": "authorization_code",
        "code": _require_str("code", code),
        "redirect_uri": _require_str("redirect_uri", redirect_uri),
    }
    if code_verifier is not None:
        data["code_verifier"] = _require_str("code_verifier", code_verifier)
    return _token_request(
        data,
        client_id=client_id,
        client_secret=client_secret,
        base_url=base_url,
        timeout=timeout,
        transport=transport,
        shared=shared,
    )


def refresh(
    *,
    refresh_token: str,
    client_id: str,
    client_secret: str,
    base_url: str = DEFAULT_BASE_URL,
    timeout: float = DEFAULT_TOKEN_TIMEOUT,
    transport: httpx.BaseTransport | None = None,
    shared: bool = False,
) -> TokenSet:
    """Trade a refresh token for a new pair; the old access token dies at once.

    ``shared=True`` uses the process's shared pool. Raises InvalidGrantError (refresh
    token unknown, revoked or rotated), OAuthError,
    ServerError, OpenHumansConnectionError, InvalidArgumentError.
    """
    data = {
        "grant_type": "refresh_token",
        "refresh_token": _require_str("refresh_token", refresh_token),
    }
    return _token_request(
        data,
        client_id=client_id,
        client_secret=client_secret,
        base_url=base_url,
        timeout=timeout,
        transport=transport,
        shared=shared,
    )
