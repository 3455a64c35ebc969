"""The sandbox's HTTP server: werkzeug's threaded server, HTTP/1.1 with keep-alive, optional TLS.

Why not werkzeug's own request handler: werkzeug 3 ends every answer with
``Connection: close``, hard-coded in ``WSGIRequestHandler.run_wsgi`` (not a matter of
``protocol_version``, which werkzeug already sets to HTTP/1.1 on a threaded server, nor of
the sandbox's code). It does so because Python's ``http.server`` does not drain a request
body the application left unread before it reads the next request line, and its own
after-response drain would swallow a client's next request. Open Humans' front end keeps
connections alive, so a client's connection pool must be testable here.

:class:`KeepAliveHandler` keeps werkzeug's environ (chunked request bodies, TLS, the
``werkzeug.socket`` the drop-connection fault closes) and replaces ``run_wsgi``:

- the answer is framed by its ``Content-Length``, or chunked when it has none;
- afterwards, what the application left unread of a ``Content-Length`` body is read and
  discarded (up to :data:`DRAIN_LIMIT`; past that the connection is closed instead);
- the connection closes when the client asks (``Connection: close``, HTTP/1.0), after a
  chunked request body, a malformed ``Content-Length``, an error, or a dropped-connection
  fault; an idle connection closes after :data:`IDLE_TIMEOUT` seconds.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

if TYPE_CHECKING:
    from .app import SandboxApp

logger = logging.getLogger("openhumans.sandbox")

IDLE_TIMEOUT = 75.0  # seconds a kept-alive connection may wait for its next request
DRAIN_LIMIT = 1 << 20  # unread body bytes worth reading to keep a connection


class _CountingInput:
    """``wsgi.input`` that counts what the application read, so the rest can be drained."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.consumed = 0

    def read(self, size: int | None = -1) -> bytes:
        data: bytes = self._stream.read(size if size is not None else -1)
        self.consumed += len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        data: bytes = self._stream.readline(size if size is not None else -1)
        self.consumed += len(data)
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines: list[bytes] = self._stream.readlines(hint)
        self.consumed += sum(len(line) for line in lines)
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


def _content_length(value: str | None) -> int | None:
    """The request's body length; ``None`` when absent, ``-1`` when malformed."""
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        return -1
    return length if length >= 0 else -1


class KeepAliveHandler(WSGIRequestHandler):
    """werkzeug's handler, answering HTTP/1.1 with persistent connections."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    # Headers and body go out in separate writes: without this, Nagle plus the client's
    # delayed ACK stalls every kept-alive answer by ~40 ms.
    disable_nagle_algorithm = True
    verbose = False
    server: SandboxHTTPServer

    def setup(self) -> None:
        tls = self.server.tls_context
        if tls is not None:
            # The handshake runs on this connection's thread, not in the accept loop.
            self.request.settimeout(self.timeout)
            self.request = tls.wrap_socket(self.request, server_side=True)
        super().setup()
        self.server.connection_opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.connection_closed(self.connection)
            if self.server.tls_context is not None:
                self.connection.close()  # socketserver closes only the unwrapped socket

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Without the query string: it may carry tokens.
        if self.verbose:
            path = self.path.split("?", 1)[0]
            logger.info('%s "%s %s" %s', self.address_string(), self.command, path, code)

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.verbose:
            logger.info("%s %s", self.address_string(), format % args)

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.environ = environ = self.make_environ()
        length = _content_length(self.headers.get("Content-Length"))
        chunked_body = bool(environ.get("wsgi.input_terminated"))
        body = _CountingInput(environ["wsgi.input"])
        environ["wsgi.input"] = body
        if chunked_body or length == -1:
            self.close_connection = True  # no way to find where the next request starts
        status_set: str | None = None
        headers_set: list[tuple[str, str]] = []
        headers_sent = False
        chunked = False

        def write(data: bytes) -> None:
            nonlocal headers_sent, chunked
            assert status_set is not None, "write() before start_response()"
            if not headers_sent:
                headers_sent = True
                code_text, _, message = status_set.partition(" ")
                code = int(code_text)
                if length and length > 0 and length - body.consumed > DRAIN_LIMIT:
                    self.close_connection = True  # too much left unread to drain
                self.send_response(code, message)
                names = set()
                for name, value in headers_set:
                    self.send_header(name, value)
                    names.add(name.lower())
                if not (
                    "content-length" in names
                    or self.command == "HEAD"
                    or 100 <= code < 200
                    or code in (204, 304)
                ):
                    chunked = True
                    self.send_header("Transfer-Encoding", "chunked")
                if self.close_connection:
                    self.send_header("Connection", "close")
                self.end_headers()
            if data:
                if chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                else:
                    self.wfile.write(data)
            self.wfile.flush()

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            nonlocal status_set, headers_set
            if exc_info and headers_sent:
                raise exc_info[1].with_traceback(exc_info[2])
            status_set, headers_set = status, list(headers)
            return write

        try:
            app_iter = self.server.app(environ, start_response)
            try:
                for data in app_iter:
                    write(data)
                if not headers_sent:
                    write(b"")
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
            finally:
                close = getattr(app_iter, "close", None)
                if close is not None:
                    close()
        except (ConnectionError, TimeoutError) as err:
            # A dropped-connection fault, or the client went away.
            self.close_connection = True
            self.connection_dropped(err, environ)
            return
        except Exception:
            logger.exception("sandbox: error serving %s %s", self.command, self.path.split("?")[0])
            self.close_connection = True
            if not headers_sent:
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()
            return
        self._drain(body, length)

    def _drain(self, body: _CountingInput, length: int | None) -> None:
        """Read what the application left of the body, so the next request starts cleanly."""
        if self.close_connection or not length or length <= 0:
            return
        remaining = length - body.consumed
        while remaining > 0:
            chunk = body.read(min(remaining, 65536))
            if not chunk:
                self.close_connection = True
                return
            remaining -= len(chunk)


class SandboxHTTPServer(ThreadedWSGIServer):
    """A thread per connection; counts connections in the store for the control plane."""

    app: SandboxApp

    def __init__(
        self,
        host: str,
        port: int,
        app: SandboxApp,
        *,
        handler: type[KeepAliveHandler] = KeepAliveHandler,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(host, port, app, handler=handler)
        self.tls_context = tls_context
        # werkzeug reads ssl_context for the environ's url_scheme; the listening socket stays
        # plain so handshakes happen on each connection's own thread.
        self.ssl_context = tls_context
        self._live: set[socket.socket] = set()
        self._live_lock = threading.Lock()

    def connection_opened(self, sock: socket.socket) -> None:
        with self._live_lock:
            self._live.add(sock)
        store = self.app.store
        with store.lock:
            store.connections_opened += 1
            store.connections_open += 1

    def connection_closed(self, sock: socket.socket) -> None:
        with self._live_lock:
            if sock not in self._live:
                return
            self._live.discard(sock)
        store = self.app.store
        with store.lock:
            store.connections_open -= 1

    def close_connections(self) -> None:
        """End every open connection (idle keep-alive ones included), as at shutdown."""
        with self._live_lock:
            live = list(self._live)
        for sock in live:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A failed TLS handshake (an untrusting client) or a reset: not the server's fault.
        logger.debug("sandbox: connection from %s failed", client_address, exc_info=True)
