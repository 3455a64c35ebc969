"""Smoke tests of the sandbox over real sockets with plain httpx (the essentials only)."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from openhumans.sandbox import Sandbox

API = "/api/direct-sharing/project/"


@pytest.fixture
def oh():
    with Sandbox(client_id="cid", client_secret="csecret") as sandbox:
        yield sandbox


@pytest.fixture
def http(oh):
    with httpx.Client(base_url=oh.base_url, timeout=10, follow_redirects=False) as client:
        yield client


def member_with_token(oh):
    pmid = oh.create_member(username="alice")["project_member_id"]
    return pmid, oh.issue_tokens(pmid)


def test_code_flow_with_pkce_and_rotation(oh, http):
    pmid = oh.create_member(username="bob")["project_member_id"]
    verifier = "v" * 50
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    )
    location = oh.authorize(
        pmid, state="s1", code_challenge=challenge, code_challenge_method="S256"
    )
    code = httpx.URL(location).params["code"]
    assert location.endswith("&origin=external")
    r = http.post(
        "/oauth2/token/",
        data={"grant_type": "authorization_code", "code": code},
        auth=("cid", "csecret"),
    )
    assert r.json() == {"error": "invalid_request", "error_description": "Code verifier required."}
    r = http.post(
        "/oauth2/token/",
        data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier},
        auth=("cid", "csecret"),
    )
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    tokens = r.json()
    assert list(tokens) == ["access_token", "expires_in", "token_type", "scope", "refresh_token"]
    # single use
    r = http.post(
        "/oauth2/token/",
        data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier},
        auth=("cid", "csecret"),
    )
    assert (r.status_code, r.json()) == (400, {"error": "invalid_grant"})
    r = http.post(
        "/oauth2/token/",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "cid",
            "client_secret": "csecret",
        },
    )
    assert r.status_code == 200
    r = http.get(API, params={"access_token": tokens["access_token"]})
    assert r.status_code == 401 and r.json() == {"detail": "Invalid token."}


def test_token_errors(http):
    r = http.post("/oauth2/token/", json={"grant_type": "authorization_code"})
    assert (r.status_code, r.json()) == (400, {"error": "unsupported_grant_type"})
    r = http.post("/oauth2/token/", data={"grant_type": "authorization_code", "code": "x"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer error="invalid_client"'
    assert r.text == '{"error": "invalid_client"}'


def test_direct_upload_download_delete(oh, http):
    pmid, tokens = member_with_token(oh)
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    meta = json.dumps({"description": "d", "tags": ["t"]})
    r = http.post(
        API + "files/upload/direct/", headers=auth, data={"filename": "a.txt", "metadata": meta}
    )
    assert r.status_code == 201, r.text
    file_id, url = r.json()["id"], r.json()["url"]
    assert (
        http.put(url, content=b"hello", headers={"Content-Type": "text/plain"}).status_code == 403
    )
    chunked = http.put(url, content=iter([b"hel", b"lo"]))
    assert chunked.status_code == 501
    r = http.put(url, content=b"hello")
    assert r.status_code == 200 and r.headers["etag"] == f'"{hashlib.md5(b"hello").hexdigest()}"'
    r = http.post(API + "files/upload/complete/", headers=auth, data={"file_id": file_id})
    assert r.json() == {"status": "ok", "size": 5}
    listing = http.get(API + "exchange-member/", headers=auth).json()
    download = listing["data"][0]["download_url"]
    r = http.get(download)
    assert r.status_code == 302
    assert http.get(r.headers["location"]).content == b"hello"
    assert http.get(download.split("?")[0] + "?key=nope").status_code == 403
    r = http.post(API + "files/delete/", headers=auth, data={"file_id": file_id})
    assert r.json() == {"ids": [file_id]}
    r = http.post(API + "files/upload/complete/", headers=auth, data={"file_id": 10**30})
    assert (r.status_code, r.json()) == (400, {"detail": "file does not exist"})


def test_auth_matrix_basics(oh, http):
    r = http.get(API)
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="api"'
    r = http.put(API, params={"access_token": oh.master_token})
    assert r.status_code == 405 and r.text == '{"detail":"Method \\"PUT\\" not allowed."}'
    r = http.get(API.rstrip("/"))
    assert r.status_code == 301 and r.headers["location"] == API


def test_message_and_remove_with_webhook(oh, http):
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            # Call back into the sandbox while remove-members is still open.
            status = httpx.get(oh.base_url + API, params={"access_token": oh.master_token})
            received.append((dict(self.headers), body, status.status_code))
            self.send_response(500 if len(received) == 1 else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        oh.configure(
            webhook_url=f"http://127.0.0.1:{server.server_port}/deauth",
            webhook_secret="abcdefghijklmnop",
        )
        pmid, tokens = member_with_token(oh)
        r = http.post(
            API + "message/",
            params={"access_token": oh.master_token},
            json={"project_member_ids": [pmid], "message": "hi {{ PROJECT_MEMBER_ID }}"},
        )
        assert r.json() == "success"
        assert oh.inbox()[0]["message"] == f"hi {pmid}"
        r = http.post(API + "remove-members/", params={"access_token": tokens["access_token"]})
        assert r.json() == "success"
    finally:
        server.shutdown()
    assert len(received) == 2
    headers, body, status = received[0]
    assert status == 200
    assert headers["X-OpenHumans-Webhooks-Signature"] == (
        "sha1=" + __import__("hmac").new(b"abcdefghijklmnop", body, "sha1").hexdigest()
    )
    assert "X-OpenHumans-Webhooks-Signature" not in received[1][0]
    assert json.loads(json.loads(received[1][1])) == json.loads(body)
    assert [w["attempt"] for w in oh.webhooks()] == [1, 2]


def test_faults_and_request_log(oh, http):
    oh.set_fault(endpoint=API, error_rate=1.0, status=502, times=1)
    r = http.get(API, params={"access_token": oh.master_token})
    assert r.status_code == 502
    oh.set_fault(endpoint=API, drop_connection=True)
    with pytest.raises(httpx.TransportError):
        http.get(API, params={"access_token": oh.master_token})
    oh.clear_faults()
    assert http.get(API, params={"access_token": oh.master_token}).status_code == 200
    log = oh.request_log()
    assert log["counts"]["GET " + API] == 3
    assert all("access_token" not in json.dumps(e) for e in log["requests"])


def test_state_file_survives_a_restart(tmp_path):
    state = tmp_path / "state.json"
    with Sandbox(state_file=state) as oh:
        pmid = oh.create_member(username="carol")["project_member_id"]
        tokens = oh.issue_tokens(pmid)
        oh.add_files(pmid, count=2, content=b"kept")
        master = oh.master_token
    with Sandbox(state_file=state) as oh:
        assert oh.master_token == master
        r = httpx.get(
            oh.base_url + API + "exchange-member/",
            params={"access_token": tokens["access_token"]},
        )
        assert r.json()["count"] == 2
        download = httpx.get(r.json()["data"][0]["download_url"], follow_redirects=True)
        assert download.content == b"kept"


def test_cli_help_documents_every_option():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "openhumans.sandbox", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for option in (
        "--host",
        "--port",
        "--client-id",
        "--client-secret",
        "--redirect-uri",
        "--webhook-url",
        "--webhook-secret",
        "--state-file",
        "--tls",
        "--tls-cert",
        "--tls-key",
        "OH_SANDBOX_PORT",
    ):
        assert option in out


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        (
            "POST",
            API + "files/delete/",
            {"content": b"\xff\xfe", "headers": {"Content-Type": "application/json"}},
        ),
        ("POST", API + "files/delete/", {"data": {"file_id": str(10**30)}}),
        (
            "POST",
            API + "files/upload/",
            {"content": b"--x\r\n", "headers": {"Content-Type": "multipart/form-data"}},
        ),
        (
            "POST",
            API + "message/",
            {
                "content": b"a=%ff%fe&message=%ff",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
        ),
        ("GET", "/data-management/datafile-download/" + "9" * 40 + "/", {}),
        (
            "POST",
            "/oauth2/token/",
            {
                "content": b"\x00\xff",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
        ),
        ("POST", "/_sandbox/members/", {"content": b"{bad"}),
        ("POST", "/_sandbox/faults/", {"json": {"error_rate": "x"}}),
    ],
)
def test_garbage_is_a_4xx_and_the_server_survives(oh, http, method, path, kwargs):
    headers = {"Authorization": f"Bearer {oh.master_token}", **kwargs.pop("headers", {})}
    r = http.request(method, path, headers=headers, **kwargs)
    assert 200 <= r.status_code < 500, (r.status_code, r.text)
    assert http.get(API, params={"access_token": oh.master_token}).status_code == 200


@pytest.mark.oh_sandbox(client_id="marked-id", access_token_lifetime=5)
def test_fixture_reads_the_marker(oh_sandbox):
    assert oh_sandbox.client_id == "marked-id"
    pmid = oh_sandbox.create_member(username="dora")["project_member_id"]
    assert oh_sandbox.issue_tokens(pmid)["expires_in"] == 5


def test_cli_serves_until_interrupted(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    env = {**os.environ, "OH_SANDBOX_PORT": "0", "OH_SANDBOX_CLIENT_ID": "from-env"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "openhumans.sandbox", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        first = proc.stdout.readline()
        url = first.split(" at ")[1].strip().rstrip("/")
        config = httpx.get(url + "/_sandbox/config/").json()
        assert config["client_id"] == "from-env"
        assert httpx.get(url + "/").status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


def test_revoke_token_kills_the_pair_but_not_the_membership(oh, http):
    pmid, tokens = member_with_token(oh)
    r = http.post(
        "/oauth2/revoke_token/", data={"token": tokens["access_token"]}, auth=("cid", "csecret")
    )
    assert r.status_code == 200
    assert http.get(API, params={"access_token": tokens["access_token"]}).status_code == 401
    r = http.post(
        "/oauth2/token/",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=("cid", "csecret"),
    )
    assert r.json() == {"error": "invalid_grant"}
    assert oh.member(pmid)["active"] is True
    assert oh.webhooks() == []
