"""Conformance: bad input gets a 4xx (or the real server's answer), never a crash (issue 3)."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import pytest

from .conftest import API, AUTHORIZE, TOKEN, bearer

HUGE = str(10**30)


@pytest.fixture
def still_alive(oh, http, new_member):
    """After the test body, the sandbox still answers a normal authenticated request."""
    m = new_member()
    yield m
    r = http.get(API, headers=bearer(m.access_token))
    assert r.status_code == 200, r.text


def assert_client_error(r: httpx.Response) -> None:
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])


@pytest.mark.parametrize(
    "path",
    [
        API + "message/",
        API + "remove-members/",
        API + "files/delete/",
        API + "files/upload/direct/",
        API + "files/upload/complete/",
    ],
)
@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"a": ', b"\xff\xfe\x00garbage", b"[1, 2", b'"\\ud800"'],
)
def test_garbage_json(oh, http, still_alive, path, body):
    """Garbage JSON → 400 (DRF's parse error), and the server keeps answering."""
    r = http.post(
        path,
        content=body,
        headers={**bearer(still_alive.access_token), "Content-Type": "application/json"},
    )
    assert_client_error(r)
    assert r.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("body", [b"[]", b"42", b'"text"', b"null"])
def test_json_that_is_not_an_object(oh, http, still_alive, body):
    """A JSON body that is not an object is not a crash."""
    r = http.post(
        API + "files/delete/",
        content=body,
        headers={**bearer(still_alive.access_token), "Content-Type": "application/json"},
    )
    assert_client_error(r)


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        (API + "message/", "application/x-www-form-urlencoded"),
        (API + "files/delete/", "application/x-www-form-urlencoded"),
        (API + "files/upload/", "multipart/form-data; boundary=xyz"),
        (API + "files/upload/", "multipart/form-data"),
        (TOKEN, "application/x-www-form-urlencoded"),
    ],
)
def test_non_utf8_and_malformed_bodies(oh, http, still_alive, path, content_type):
    """Non-UTF-8 form bytes and broken multipart: a 4xx or an ordinary answer, never 5xx."""
    r = http.post(
        path,
        content=b"message=\xff\xfe&file_id=\xc3\x28&grant_type=\x80",
        headers={**bearer(still_alive.access_token), "Content-Type": content_type},
    )
    assert r.status_code < 500, r.text[:300]


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", API + "files/delete/", {"data": {"file_id": HUGE}}),
        ("POST", API + "files/delete/", {"json": {"file_id": 10**30}}),
        ("POST", API + "files/upload/complete/", {"data": {"file_id": HUGE}}),
        ("POST", API + "files/upload/complete/", {"data": {"file_id": "-1"}}),
        ("POST", API + "message/", {"data": {"message": "x", "project_member_ids": HUGE}}),
        ("GET", API + "exchange-member/", {"params": {"limit": HUGE}}),
        ("GET", API + "exchange-member/", {"params": {"offset": HUGE}}),
        ("GET", API + "exchange-member/", {"params": {"offset": "-3"}}),
        ("GET", f"/data-management/datafile-download/{HUGE}/", {"params": {"key": "k"}}),
    ],
)
def test_huge_and_odd_numbers(oh, http, still_alive, method, path, kwargs):
    """Huge ids (10**30) and negative numbers are never a server error."""
    r = http.request(method, path, headers=bearer(still_alive.access_token), **kwargs)
    assert r.status_code < 500, r.text[:300]


def test_huge_project_member_id_with_master(oh, http, still_alive):
    """A 31-digit project_member_id is simply not a member of this project."""
    r = http.get(
        API + "exchange-member/",
        params={"project_member_id": HUGE},
        headers=bearer(oh.master_token),
    )
    assert r.status_code == 400
    assert r.json() == {"project_member_id": "project_member_id is invalid"}


def test_huge_offset_gives_empty_page(oh, http, still_alive):
    """An offset past the end is an empty page, like DRF's."""
    r = http.get(
        API + "exchange-member/", params={"offset": HUGE}, headers=bearer(still_alive.access_token)
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"] == []


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_token_endpoint_wrong_methods(oh, http, still_alive, method):
    """The token endpoint only takes POST."""
    r = http.request(method, TOKEN)
    assert r.status_code == 405, r.text[:300]


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"action": "authorize"},
        {"action": "authorize", "client_id": "nope", "response_type": "code"},
        {"action": "authorize", "response_type": "code", "member": "00000000", "client_id": "CID"},
        {"action": "explode", "response_type": "code", "client_id": "CID"},
    ],
)
def test_authorize_form_bad_posts(oh, http, still_alive, data):
    """Malformed consent POSTs get a 4xx page (or a redirect), never a 500."""
    data = {k: (oh.client_id if v == "CID" else v) for k, v in data.items()}
    r = http.post(AUTHORIZE, data=data)
    assert r.status_code < 500, r.text[:300]
    if r.status_code == 302:
        assert "code=" not in r.headers["location"]


def test_unknown_paths_are_404(oh, http, still_alive):
    """Unknown API paths are a plain 404, not a crash."""
    r = http.get(API + "no-such-endpoint/", headers=bearer(still_alive.access_token))
    assert r.status_code == 404


def test_non_bearer_scheme(oh, http, still_alive):
    """A non-Bearer Authorization header is treated as no credentials."""
    r = http.get(API, headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert r.status_code == 401
    assert r.json() == {"detail": "Authentication credentials were not provided."}


def test_dropped_client_connection_does_not_hurt(oh, http, still_alive):
    """A client that sends half a request and vanishes leaves the server serving."""
    parts = urlsplit(oh.base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/direct-sharing/project/message/ HTTP/1.1\r\nHost: x\r\n"
            b'Content-Length: 1000\r\nContent-Type: application/json\r\n\r\n{"mess'
        )


def raw_status(oh, request: bytes) -> int:
    """Send hand-made bytes, return the status of the answer (0 if there was none)."""
    parts = urlsplit(oh.base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head = raw.split(b"\r\n", 1)[0].split(b" ")
    return int(head[1]) if len(head) > 1 and head[0].startswith(b"HTTP/") else 0


@pytest.mark.parametrize(
    "framing",
    [
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        b"Transfer-Encoding: chunked\r\n\r\n5\r\n{}",
        b"Content-Length: abc\r\n\r\n{}",
        b"Content-Length: -1\r\n\r\n{}",
    ],
    ids=["bad-chunk-size", "truncated-chunk", "cl-not-a-number", "cl-negative"],
)
def test_broken_request_framing(oh, still_alive, framing):
    """Malformed chunked framing or Content-Length → a 4xx, not a 500."""
    request = (
        b"POST /api/direct-sharing/project/message/ HTTP/1.1\r\nHost: sandbox\r\n"
        b"Connection: close\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + still_alive.access_token.encode() + b"\r\n" + framing
    )
    status = raw_status(oh, request)
    assert 400 <= status < 500, status


def test_concurrent_requests(oh, http, still_alive):
    """The server handles concurrent requests (issue 3: thread-safe)."""
    tok = still_alive.access_token

    def call(i):
        with httpx.Client(base_url=oh.base_url, timeout=15) as c:
            if i % 3 == 0:
                return c.post(API + "message/", headers=bearer(tok), json={"message": str(i)})
            return c.get(API + "exchange-member/", headers=bearer(tok))

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(call, range(48)))
    assert [r.status_code for r in results] == [200] * 48
    assert len(oh.inbox()) == 16
