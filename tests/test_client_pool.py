"""One connection pool per process (issue 9): shared by model calls, fork-safe, per setting.

The server here is a tiny HTTP/1.1 keep-alive server over real sockets that counts the TCP
connections it accepts, so "one connection for many calls" is observed on the wire.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from openhumans.client import OpenHumansClient
from openhumans.client._pool import shared_pool
from openhumans.models import OpenHumansMember

ROOT = Path(__file__).resolve().parents[1]
FILES = {"count": 1, "next": None, "results": [], "data": [], "project_member_id": "12345678"}
FILES["data"] = [
    {
        "id": 7,
        "basename": "a.txt",
        "created": "2026-01-01T00:00:00Z",
        "download_url": "",
        "metadata": {},
    }
]


class KeepAliveServer(ThreadingHTTPServer):
    """Answers every GET with one member's files and every POST with ``{}``; keeps alive."""

    daemon_threads = True

    def __init__(self) -> None:
        self.connections = 0
        self.requests = 0
        self.lock = threading.Lock()

        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                with server.lock:
                    server.connections += 1
                super().setup()

            def _answer(self, body: bytes) -> None:
                with server.lock:
                    server.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                self._answer(json.dumps(FILES).encode())

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._answer(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def server() -> Iterator[KeepAliveServer]:
    srv = KeepAliveServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def member(server, settings, db):
    settings.OPENHUMANS_OH_BASE_URL = server.url
    tokens = {"access_token": "a" * 30, "refresh_token": "r" * 30, "expires_in": 36000}
    return OpenHumansMember.create("12345678", tokens)


def test_model_calls_share_one_connection(member, server):
    for _ in range(5):
        assert [f["id"] for f in member.list_files()] == [7]
    member.message("hello", "there")
    assert server.requests == 6
    assert server.connections == 1


def test_the_shared_pool_is_one_object_per_base_url_and_timeout(server):
    first = OpenHumansClient.shared("t1", base_url=server.url, timeout=5)
    second = OpenHumansClient.shared("t2", base_url=server.url, timeout=5)
    other = OpenHumansClient.shared("t1", base_url=server.url, timeout=6)
    assert first._http is second._http
    assert other._http is not first._http
    second.close()  # a client over the shared pool leaves it open
    assert first.list_files() and server.connections == 1


def test_a_changed_setting_gets_its_own_pool(member, server, settings):
    member.list_files()
    other = KeepAliveServer()
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        settings.OPENHUMANS_OH_BASE_URL = other.url
        member.list_files()
        assert (server.requests, other.requests) == (1, 1)
        settings.OPENHUMANS_OH_BASE_URL = server.url
        member.list_files()
        assert (server.requests, other.requests) == (2, 1)
        assert server.connections == 1  # the first pool was kept, with its connection
    finally:
        other.shutdown()
        other.server_close()


def test_get_access_token_on_a_fresh_token_reads_one_row(member, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert member.get_access_token() == "a" * 30


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_never_reuses_the_parents_connections(server):
    pool = shared_pool(server.url, 5.0)
    client = OpenHumansClient.shared("t", base_url=server.url, timeout=5.0)
    client.list_files()
    assert server.connections == 1
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running pytest's teardown
        code = 1
        try:
            child_pool = shared_pool(server.url, 5.0)
            OpenHumansClient.shared("t", base_url=server.url, timeout=5.0).list_files()
            code = 0 if child_pool is not pool and child_pool.http is not pool.http else 2
        finally:
            os.write(write, bytes([code]))
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        result = pipe.read()
    os.waitpid(pid, 0)
    assert result == b"\x00", "the child reused the parent's pool"
    assert server.connections == 2  # the child opened its own connection
    client.list_files()  # the parent's connection still works and is still the one used
    assert server.connections == 2
    assert shared_pool(server.url, 5.0) is pool


def test_plain_http_builds_no_tls_context(server):
    """In a fresh interpreter: shared and per-call clients over http build no SSLContext."""
    script = textwrap.dedent(
        f"""
        import ssl
        built = []

        def counting(make):
            def wrapper(*args, **kwargs):
                built.append(make.__name__)
                return make(*args, **kwargs)
            return wrapper

        # How httpx (verify=True) and httpcore build their SSLContext: with the CA bundle.
        ssl.create_default_context = counting(ssl.create_default_context)
        from openhumans.client import OpenHumansClient
        from openhumans.client._http import PROCESS_TLS

        OpenHumansClient.shared("t", base_url="{server.url}").list_files()
        with OpenHumansClient("t", base_url="{server.url}") as oh:
            oh.list_files()
        assert not built, built
        PROCESS_TLS.set_alpn_protocols(["http/1.1"])  # the first https connection does this
        PROCESS_TLS.set_alpn_protocols(["http/1.1"])
        assert built == ["create_default_context"], built
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert server.requests == 2


def test_the_first_call_imports_nothing(server):
    """In a fresh interpreter: importing the client loads what a call needs (no import on the
    hot path; httpx would otherwise import httpcore and h11 on the first call)."""
    script = textwrap.dedent(
        f"""
        import sys
        from openhumans.client import OpenHumansClient

        loaded = set(sys.modules)
        OpenHumansClient.shared("t", base_url="{server.url}").list_files()
        print(sorted(set(sys.modules) - loaded))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
