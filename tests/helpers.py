"""Helpers for the app's tests: drive a login through the sandbox, count sandbox requests."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

APP_BASE_URL = "http://testserver"
REDIRECT_URI = APP_BASE_URL + "/openhumans/complete"
TOKEN_PATH = "POST /oauth2/token/"

requires_postgres = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith(("postgres", "pgsql")),
    reason="needs PostgreSQL (DATABASE_URL): select_for_update is a no-op on SQLite",
)


def token_requests(sandbox: Any) -> int:
    """How many requests reached the sandbox's token endpoint."""
    return int(sandbox.request_log()["counts"].get(TOKEN_PATH, 0))


def api_requests(sandbox: Any, endpoint: str, method: str = "POST") -> int:
    """How many requests reached ``/api/direct-sharing/project/<endpoint>``."""
    key = f"{method} /api/direct-sharing/project/{endpoint}"
    return int(sandbox.request_log()["counts"].get(key, 0))


def start_login(client: Any, **params: str) -> dict[str, str]:
    """GET openhumans:login and return the authorize URL's query parameters."""
    response = client.get("/openhumans/login/", params)
    assert response.status_code == 302
    query = parse_qs(urlsplit(response["Location"]).query)
    return {key: values[0] for key, values in query.items()}


def authorize(sandbox: Any, pmid: str, query: dict[str, str]) -> str:
    """Let the sandbox approve the login; return the complete URL's path and query."""
    redirect = sandbox.authorize(
        pmid,
        state=query.get("state"),
        code_challenge=query.get("code_challenge"),
        code_challenge_method=query.get("code_challenge_method"),
        redirect_uri=query["redirect_uri"],
    )
    parts = urlsplit(redirect)
    return f"{parts.path}?{parts.query}"


def log_in(client: Any, sandbox: Any, pmid: str, **params: str) -> Any:
    """Run the whole login (login view -> sandbox authorize -> complete); return the response."""
    return client.get(authorize(sandbox, pmid, start_login(client, **params)))
