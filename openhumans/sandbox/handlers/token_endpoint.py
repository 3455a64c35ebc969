"""``/oauth2/token/`` (spec §1.2–§1.4) and ``/oauth2/revoke_token/`` (spec §1.5)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import unquote_plus

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from ..state import Store


def token_response(body: dict[str, Any], status: int = 200, **headers: str) -> Response:
    """oauthlib's answer: ``json.dumps`` default separators, never cached (spec §1.2)."""
    response = Response(json.dumps(body), status=status, content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    for name, value in headers.items():
        response.headers[name.replace("_", "-")] = value
    return response


def oauth_error(code: str, description: str | None = None) -> Response:
    body = {"error": code}
    if description:
        body["error_description"] = description
    if code == "invalid_client":
        return token_response(body, 401, WWW_Authenticate=f'Bearer error="{code}"')
    return token_response(body, 400)


def _client_authenticated(store: Store, request: Request, params: dict[str, str]) -> bool:
    """DOT: HTTP Basic first, then ``client_id``/``client_secret`` in the body."""
    config = store.config
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() == "basic" and encoded:
        try:
            decoded = base64.b64decode(encoded.strip(), validate=False).decode("utf-8")
            client_id, client_secret = decoded.split(":", 1)
        except (ValueError, UnicodeDecodeError):
            pass
        else:
            if unquote_plus(client_id) == config["client_id"] and hmac.compare_digest(
                unquote_plus(client_secret).encode(), config["client_secret"].encode()
            ):
                return True
    body_id = params.get("client_id")
    body_secret = params.get("client_secret") or ""
    return body_id == config["client_id"] and hmac.compare_digest(
        body_secret.encode(), config["client_secret"].encode()
    )


def _pkce_ok(challenge: str, method: str | None, verifier: str) -> bool:
    if method == "S256":
        digest = hashlib.sha256(verifier.encode("utf-8")).digest()
        computed = base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
        return hmac.compare_digest(computed, challenge)
    return hmac.compare_digest(verifier.encode(), challenge.encode())


def token(store: Store, request: Request) -> Response:
    """``POST /oauth2/token/``: authorization_code and refresh_token grants (spec §1.2–§1.4)."""
    # DOT reads request.POST: a JSON body is simply not seen (spec §1.2).
    form: MultiDict[str, str] = MultiDict()
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = MultiDict(request.form)
        except (ValueError, OSError):
            form = MultiDict()
    params: dict[str, str] = {k: request.args.getlist(k)[-1] for k in request.args.keys()}
    params.update({k: form.getlist(k)[-1] for k in form.keys()})
    duplicates = {k for k in request.args.keys() if len(request.args.getlist(k)) > 1}
    duplicates |= set(request.args.keys()) & set(form.keys())
    with store.lock:
        grant_type = params.get("grant_type")
        if grant_type == "refresh_token":
            return _refresh_grant(store, request, params)
        if grant_type == "password":
            for name in ("username", "password"):
                if not params.get(name):
                    return oauth_error("invalid_request", f"Request is missing {name} parameter.")
            if not _client_authenticated(store, request, params):
                return oauth_error("invalid_client")
            # Spec §6: oauthlib checks the user before the grant type, and sandbox members
            # have no password, so every password grant has wrong credentials.
            return oauth_error("invalid_grant", "Invalid credentials given.")
        if grant_type == "client_credentials":
            if not _client_authenticated(store, request, params):
                return oauth_error("invalid_client")
            return oauth_error("unauthorized_client")
        return _code_grant(store, request, params, duplicates)


def _code_grant(
    store: Store, request: Request, params: dict[str, str], duplicates: set[str]
) -> Response:
    if params.get("grant_type") != "authorization_code":
        return oauth_error("unsupported_grant_type")
    code = params.get("code")
    if code is None:
        return oauth_error("invalid_request", "Missing code parameter.")
    for name in ("client_id", "grant_type", "redirect_uri"):
        if name in duplicates:
            return oauth_error("invalid_request", f"Duplicate {name} parameter.")
    if not _client_authenticated(store, request, params):
        return oauth_error("invalid_client")
    record = store.codes.get(code)
    if record is None or record["expires"] <= store.now():
        return oauth_error("invalid_grant")
    challenge = record.get("code_challenge")
    if challenge is not None:
        verifier = params.get("code_verifier")
        if verifier is None:
            return oauth_error("invalid_request", "Code verifier required.")
        if not _pkce_ok(challenge, record.get("code_challenge_method"), verifier):
            return oauth_error("invalid_grant")
    redirect_uri = params.get("redirect_uri") or store.config["redirect_uri"]
    if redirect_uri != record["redirect_uri"]:
        return oauth_error("invalid_request", "Mismatching redirect URI.")
    del store.codes[code]
    body = store.issue_tokens(record["pmid"], record["scope"].split())
    return token_response(body)


def _refresh_grant(store: Store, request: Request, params: dict[str, str]) -> Response:
    refresh = params.get("refresh_token")
    if refresh is None:
        return oauth_error("invalid_request", "Missing refresh token parameter.")
    if not _client_authenticated(store, request, params):
        return oauth_error("invalid_client")
    record = store.refresh_tokens.get(refresh)
    if record is None:
        return oauth_error("invalid_grant")
    original = record["scope"].split()
    scopes = original
    if params.get("scope"):
        scopes = params["scope"].split()
        if any(s not in original for s in scopes):
            return oauth_error("invalid_scope")
    # Spec §1.4: rotation deletes the old access token and the old refresh token at once.
    store.access_tokens.pop(record["access_token"], None)
    del store.refresh_tokens[refresh]
    body = store.issue_tokens(record["pmid"], scopes)
    return token_response(body)


def revoke(store: Store, request: Request) -> Response:
    """``POST /oauth2/revoke_token/`` (spec §1.5, RFC 7009): no webhook, membership stays."""
    try:
        form = request.form if request.mimetype == "application/x-www-form-urlencoded" else None
    except (ValueError, OSError):
        form = None
    params = {k: form.getlist(k)[-1] for k in form.keys()} if form is not None else {}
    with store.lock:
        if not _client_authenticated(store, request, params):
            return oauth_error("invalid_client")
        token_value = params.get("token")
        if not token_value:
            return oauth_error("invalid_request", "Missing token parameter.")
        hint = params.get("token_type_hint")
        if hint not in (None, "access_token", "refresh_token"):
            return oauth_error("unsupported_token_type")
        access = store.access_tokens.pop(token_value, None)
        if access is not None:
            # DOT: revoking an access token also revokes its refresh token.
            store.refresh_tokens.pop(access["refresh_token"], None)
        refresh = store.refresh_tokens.pop(token_value, None)
        if refresh is not None:
            store.access_tokens.pop(refresh["access_token"], None)
        store.changed()
    # RFC 7009: 200 with an empty body, whether or not the token existed.
    return Response(b"", status=200, content_type="application/json")
