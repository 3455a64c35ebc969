"""Every call to Open Humans ends by its total deadline, however slowly the server answers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from openhumans import client as oh_client
from openhumans.exceptions import OpenHumansConnectionError


class DripServer:
    """A TCP server answering every request one byte a second (headers, or the body)."""

    def __init__(self, *, drip_headers: bool) -> None:
        self.drip_headers = drip_headers
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        body = b'{"access_token": "a", "refresh_token": "r", "expires_in": 36000}' * 4
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        head += b"Content-Length: %d\r\n\r\n" % len(body)
        with conn:
            try:
                conn.recv(65536)
                if not self.drip_headers:
                    conn.sendall(head)
                for byte in head + body if self.drip_headers else body:
                    if self.stop.wait(1.0):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture(params=[False, True], ids=["body", "headers"])
def drip(request: pytest.FixtureRequest) -> Iterator[DripServer]:
    server = DripServer(drip_headers=request.param)
    yield server
    server.close()


def test_an_api_call_ends_by_its_deadline_not_per_read(drip: DripServer) -> None:
    # Before: each read got 2 s and each byte came in 1 s, so list_files() took 25 s+.
    client = oh_client.OpenHumansClient("t" * 30, base_url=drip.base_url, timeout=2)
    started = time.monotonic()
    with client, pytest.raises(OpenHumansConnectionError, match="timed out"):
        client.list_files()
    assert time.monotonic() - started < 4.5  # 2 s deadline (the GET retries included)


def test_a_refresh_ends_by_its_deadline(drip: DripServer) -> None:
    started = time.monotonic()
    with pytest.raises(OpenHumansConnectionError, match="timed out"):
        oh_client.refresh(
            refresh_token="r" * 30,
            client_id="id",
            client_secret="secret",
            base_url=drip.base_url,
            timeout=2,
        )
    assert time.monotonic() - started < 4.5


def test_deadlines_default_below_gunicorns_worker_timeout() -> None:
    from openhumans.client._http import DEFAULT_TIMEOUT, DEFAULT_TOKEN_TIMEOUT
    from openhumans.conf import DEFAULTS

    assert DEFAULTS["OPENHUMANS_TIMEOUT"] == DEFAULT_TIMEOUT < DEFAULT_TOKEN_TIMEOUT < 30
    assert DEFAULTS["OPENHUMANS_TOKEN_TIMEOUT"] == DEFAULT_TOKEN_TIMEOUT
