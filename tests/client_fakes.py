"""Canned Open Humans answers for the client tests (``httpx.MockTransport`` handlers).

Each canned body is the one the spec gives for that endpoint and situation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from openhumans.client import (
    OpenHumansClient,
)

BASE = "https://oh.test"
API = "/api/direct-sharing/project/"
USER_TOKEN = "UsErToKeN0123456789abcdefghijk"  # 30 chars, like oauthlib's tokens
MASTER_TOKEN = "MaStEr" + "x" * 58
S3_URL = (
    "https://s3.test/member-files/direct-sharing-128/uuid/data.csv"
    "?Signature=SIGSECRET&Expires=1527445347&AWSAccessKeyId=AKIDSECRET"
)
SECRETS = (USER_TOKEN, MASTER_TOKEN, "SIGSECRET", "AKIDSECRET", "REFRESHSECRET")

Handler = Callable[[httpx.Request], httpx.Response]


class Server:
    """A MockTransport handler that records every request (with its body) and routes it."""

    def __init__(self, routes: dict[tuple[str, str], Handler] | None = None) -> None:
        self.routes = dict(routes or {})
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.bodies.append(request.read())
        key = (request.method, request.url.path)
        if key not in self.routes:
            return httpx.Response(404, json={"detail": "Not found."})
        return self.routes[key](request)

    def on(self, method: str, path: str, handler: Handler | httpx.Response) -> Server:
        self.routes[(method, path)] = (
            (lambda _r: handler) if isinstance(handler, httpx.Response) else handler
        )
        return self

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if (r.method, r.url.path) == (method, path)]

    def json_body(self, index: int = -1) -> Any:
        return json.loads(self.bodies[index])


def resp(status: int, body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def make_client(server: Server, token: str = USER_TOKEN, **kw: Any) -> OpenHumansClient:
    client = OpenHumansClient(
        token, base_url=kw.pop("base_url", BASE), transport=httpx.MockTransport(server), **kw
    )
    client.retry_backoff = 0.0  # keep retry tests instant
    return client


def file_json(i: int, host: str = BASE) -> dict[str, Any]:
    return {
        "id": i,
        "basename": f"data{i}.csv",
        "created": "2018-05-27T12:22:27.718349Z",
        "datatypes": [f"{host}/api/public/datatype/12/"],
        "download_url": f"{host}/data-management/datafile-download/{i}/?key=3f0c1c5e-{i}",
        "metadata": {"description": "Test data", "tags": ["text"]},
        "source": "direct-sharing-128",
        "source_project": f"{host}/api/public/project/128/",
    }


def exchange_member_server(n_files: int, *, next_host: str = BASE, overlap: int = 0) -> Server:
    """exchange-member as spec §2.2: `data` envelope, absolute `next` with sorted params."""
    ids = list(range(1000, 1000 + n_files))

    def handler(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        limit, offset = int(params.get("limit", 100)), int(params.get("offset", 0))
        start = max(0, offset - overlap)  # `overlap` makes the server repeat files across pages
        page = ids[start : offset + limit]
        nxt = None
        if offset + limit < n_files:
            nparams = {**params, "access_token": USER_TOKEN, "offset": str(offset + limit)}
            query = "&".join(f"{k}={v}" for k, v in sorted(nparams.items()))
            nxt = f"{next_host}{API}exchange-member/?{query}"
        return resp(
            200,
            {
                "count": n_files,
                "next": nxt,
                "previous": None,
                "created": "2019-03-15T17:02:11Z",
                "project_member_id": "01234567",
                "sources_shared": ["direct-sharing-91"],
                "data": [file_json(i) for i in page],
            },
        )

    return Server().on("GET", f"{API}exchange-member/", handler)


def assert_no_secret(exc: BaseException) -> None:
    text = f"{exc} {exc!r} {getattr(exc, 'url', '')}"
    for secret in SECRETS:
        assert secret not in text


def flaky(responses: list[httpx.Response | Exception]) -> Handler:
    it = iter(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        item = next(it)
        if isinstance(item, Exception):
            raise item
        return item

    return handler


TOKEN_BODY = {
    "access_token": USER_TOKEN,
    "expires_in": 36000,
    "token_type": "Bearer",
    "scope": "american-gut read wildlife open-humans write pgp go-viral",
    "refresh_token": "REFRESHSECRET",
}


def token_server(response: httpx.Response | Handler) -> Server:
    return Server().on("POST", "/oauth2/token/", response)
