"""The sandbox's HTTP server: keep-alive (issue 9) and TLS (issue 8), over real sockets."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
from urllib.parse import urlsplit

import httpx
import pytest

from openhumans.sandbox import Sandbox

from .conftest import API, bearer


def opened(oh) -> int:
    return oh.request_log()["connections_opened"]


def test_two_requests_reuse_one_connection(oh, new_member):
    """HTTP/1.1 keep-alive: one httpx.Client, two requests, one TCP connection accepted."""
    m = new_member()
    with httpx.Client(base_url=oh.base_url, timeout=15) as client:
        oh.clear_request_log()
        first = client.get(API, headers=bearer(m.access_token))
        second = client.get(API + "exchange-member/", headers=bearer(m.access_token))
    assert (first.status_code, second.status_code) == (200, 200)
    assert "close" not in first.headers.get("connection", "").lower()
    assert opened(oh) == 1
    assert oh.connections()["opened"] == 1
    assert [e["path"] for e in oh.request_log()["requests"]] == [
        API,
        API + "exchange-member/",
    ]


def test_without_keep_alive_each_request_is_a_connection(oh, new_member):
    """The counter counts: ``Connection: close`` is honoured, so two requests, two."""
    m = new_member()
    with httpx.Client(base_url=oh.base_url, timeout=15) as client:
        oh.clear_request_log()
        for _ in range(2):
            r = client.get(API, headers={**bearer(m.access_token), "Connection": "close"})
            assert r.status_code == 200
            assert r.headers["connection"] == "close"
    assert opened(oh) == 2


def test_unread_body_is_drained_and_the_connection_kept(oh, new_member):
    """A refused upload's body (the view read none of it) does not poison the next request."""
    m = new_member()
    started = oh_direct_upload(oh, m)
    bad_url = started.replace("Signature=", "Signature=x")
    with httpx.Client(timeout=15) as client:
        oh.clear_request_log()
        refused = client.put(bad_url, content=b"x" * 200_000)
        assert refused.status_code == 403
        good = client.put(started, content=b"payload")
        assert good.status_code == 200, good.text
        again = client.get(oh.base_url + API, headers=bearer(m.access_token))
        assert again.status_code == 200
    assert opened(oh) == 1


def oh_direct_upload(oh, m) -> str:
    with httpx.Client(base_url=oh.base_url, timeout=15) as client:
        r = client.post(
            API + "files/upload/direct/",
            headers=bearer(m.access_token),
            data={"filename": "a.txt", "metadata": '{"description":"d","tags":[]}'},
        )
    assert r.status_code == 201, r.text
    return r.json()["url"]


def test_latency_and_dropped_connection_faults_with_keep_alive(oh, new_member):
    """Faults still work on a kept-alive connection; a drop costs that connection only."""
    m = new_member()
    with httpx.Client(base_url=oh.base_url, timeout=15) as client:
        assert client.get(API, headers=bearer(m.access_token)).status_code == 200
        oh.set_fault(endpoint=API, drop_connection=True, times=1)
        oh.clear_request_log()
        with pytest.raises(httpx.TransportError):
            client.get(API, headers=bearer(m.access_token))
        oh.set_fault(endpoint=API, latency_ms=50, times=1)
        r = client.get(API, headers=bearer(m.access_token))
        assert r.status_code == 200
        assert r.elapsed.total_seconds() >= 0.05
    log = oh.request_log()
    assert [e["status"] for e in log["requests"]] == ["dropped", 200]
    assert log["connections_opened"] == 1  # the reconnection after the drop


def test_idle_connections_are_closed_when_the_sandbox_stops():
    """Stopping ends kept-alive connections, so no handler thread or socket lingers."""
    with Sandbox() as oh:
        parts = urlsplit(oh.base_url)
        sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(12) == b"HTTP/1.1 200"
        assert oh.connections()["open"] >= 1
    sock.settimeout(5)
    data = b""
    while chunk := sock.recv(65536):  # EOF, not a timeout
        data += chunk
    sock.close()


# --- TLS -------------------------------------------------------------------------------------


def test_tls_sandbox_with_a_generated_certificate(tmp_path):
    """``Sandbox(tls=True)``: HTTPS a client verifies against ``tls_ca_file``."""
    pytest.importorskip("cryptography")
    with Sandbox(tls=True) as oh:
        assert oh.base_url.startswith("https://127.0.0.1:")
        assert oh.tls_ca_file is not None
        member = oh.create_member(username="tess")  # the control plane over TLS too
        token = oh.issue_tokens(member["project_member_id"])["access_token"]
        context = ssl.create_default_context(cafile=oh.tls_ca_file)
        with httpx.Client(base_url=oh.base_url, verify=context, timeout=15) as client:
            oh.clear_request_log()
            first = client.get(API, headers=bearer(token))
            second = client.get(API + "exchange-member/", headers=bearer(token))
            assert (first.status_code, second.status_code) == (200, 200)
            listed = second.json()
        assert listed["project_member_id"] == member["project_member_id"]
        assert oh.request_log()["connections_opened"] == 1  # one handshake, kept alive
        with (
            httpx.Client(base_url=oh.base_url, timeout=15) as untrusting,
            pytest.raises(httpx.ConnectError),
        ):
            untrusting.get(API)
        # Links the API builds use the scheme it was reached by.
        assert client_links_are_https(oh, token, context)


def client_links_are_https(oh, token, context) -> bool:
    oh.add_files(oh.members()[0]["project_member_id"])
    with httpx.Client(base_url=oh.base_url, verify=context, timeout=15) as client:
        (item,) = client.get(API + "exchange-member/", headers=bearer(token)).json()["data"]
        return item["download_url"].startswith("https://")


def test_tls_sandbox_with_given_files(tmp_path):
    """``tls_cert``/``tls_key``: the sandbox serves the pair it was given."""
    pytest.importorskip("cryptography")
    from openhumans.sandbox.tls import generate_self_signed

    pair = generate_self_signed(tmp_path)
    assert oct(pair.key_file.stat().st_mode & 0o777) == "0o600"
    with Sandbox(tls_cert=pair.cert_file, tls_key=pair.key_file) as oh:
        assert oh.tls_ca_file == str(pair.cert_file)
        context = ssl.create_default_context(cafile=str(pair.cert_file))
        r = httpx.get(oh.base_url + "/", verify=context, timeout=15)
        assert r.status_code == 200
    with pytest.raises(ValueError, match="go together"):
        Sandbox(tls_cert=pair.cert_file)


def test_cli_tls(tmp_path):
    """``python -m openhumans.sandbox --tls`` prints its CA file and serves HTTPS."""
    pytest.importorskip("cryptography")
    env = {**os.environ, "OH_SANDBOX_PORT": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "openhumans.sandbox", "--tls", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        lines = []
        while not lines or "Press Ctrl-C" not in lines[-1]:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            lines.append(line)
        url = lines[0].split(" at ")[1].strip().rstrip("/")
        assert url.startswith("https://")
        (ca_line,) = [line for line in lines if "TLS CA file:" in line]
        ca_file = ca_line.split("TLS CA file:")[1].split()[0]
        context = ssl.create_default_context(cafile=ca_file)
        assert httpx.get(url + "/_sandbox/config/", verify=context).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def test_cli_tls_refuses_half_a_pair(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "openhumans.sandbox", "--tls-cert", str(tmp_path / "c.pem")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--tls-cert and --tls-key go together" in result.stderr
