"""Run the sandbox on a background thread: :class:`Sandbox` (the CLI uses it too)."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from types import TracebackType

from .app import SandboxApp
from .control_client import SandboxClient
from .http_server import KeepAliveHandler, SandboxHTTPServer
from .state import Store
from .tls import TLSFiles, generate_self_signed

DEFAULT_CLIENT_ID = "sandbox-client"
DEFAULT_CLIENT_SECRET = "sandbox-secret"
DEFAULT_REDIRECT_URI = "http://localhost:8000/openhumans/complete"
DEFAULT_ACCESS_TOKEN_LIFETIME = 36000  # spec §A.1: 10 hours


class _VerboseHandler(KeepAliveHandler):
    verbose = True


class Sandbox(SandboxClient):
    """An Open Humans sandbox served on a background thread.

    ``with Sandbox() as oh:`` starts it on a free port (``oh.base_url``) and stops it on exit.
    It answers HTTP/1.1 with keep-alive. ``tls=True`` serves HTTPS with a generated
    self-signed certificate (needs ``cryptography``) unless ``tls_cert``/``tls_key`` name PEM
    files; :attr:`tls_ca_file` is then what a client passes as ``verify=``.
    """

    def __init__(
        self,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        redirect_uri: str = DEFAULT_REDIRECT_URI,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: str | os.PathLike[str] | None = None,
        access_token_lifetime: int = DEFAULT_ACCESS_TOKEN_LIFETIME,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        verbose: bool = False,
        tls: bool = False,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
    ) -> None:
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("tls_cert and tls_key go together: give both, or neither")
        self.tls = tls or tls_cert is not None
        self._tls_files: TLSFiles | None = None
        self._tls_dir: tempfile.TemporaryDirectory[str] | None = None
        if tls_cert is not None and tls_key is not None:
            self._tls_files = TLSFiles(Path(tls_cert), Path(tls_key))
        super().__init__("http://unstarted.invalid")
        self.host = host
        self.port = port
        self.verbose = verbose
        self.store = Store(
            client_id=client_id,
            client_secret=client_secret,
            redirect_uri=redirect_uri,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            access_token_lifetime=access_token_lifetime,
            state_file=state_file,
            data_dir=data_dir,
        )
        self.app = SandboxApp(self.store)
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Cheap local reads instead of a control-plane round trip.
    @property
    def client_id(self) -> str:
        return str(self.store.config["client_id"])

    @property
    def client_secret(self) -> str:
        return str(self.store.config["client_secret"])

    @property
    def redirect_uri(self) -> str:
        return str(self.store.config["redirect_uri"])

    @property
    def master_token(self) -> str:
        return str(self.store.config["master_token"])

    @property
    def tls_ca_file(self) -> str | None:
        """The PEM file a client trusts to verify this sandbox (``None`` without TLS)."""
        return str(self._tls_files.ca_file) if self._tls_files is not None else None

    @property
    def tls_cert_file(self) -> str | None:
        return str(self._tls_files.cert_file) if self._tls_files is not None else None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> Sandbox:
        """Bind the port and serve on a daemon thread; return ``self``."""
        if self._server is not None:
            return self
        handler = _VerboseHandler if self.verbose else KeepAliveHandler
        context = None
        if self.tls:
            if self._tls_files is None:
                self._tls_dir = tempfile.TemporaryDirectory(prefix="oh-sandbox-tls-")
                self._tls_files = generate_self_signed(self._tls_dir.name, self.host)
            context = self._tls_files.server_context()
            self._verify = str(self._tls_files.ca_file)
        server = SandboxHTTPServer(
            self.host, self.port, self.app, handler=handler, tls_context=context
        )
        self._server = server
        host = self.host
        if host in ("0.0.0.0", ""):  # noqa: S104 - a bind address, compared not used
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        self.port = server.server_port
        scheme = "https" if context is not None else "http"
        self.base_url = f"{scheme}://{host}:{self.port}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"oh-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the port and remove temporary file storage."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.close_connections()  # idle keep-alive connections would linger
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.close()
        self.store.close()
        if self._tls_dir is not None:
            self._tls_dir.cleanup()
            self._tls_dir = None
            self._tls_files = None

    def serve_forever(self) -> None:
        """Serve on the calling thread until interrupted (used by the CLI)."""
        if self._server is None:
            self.start()
        assert self._thread is not None
        try:
            while self._thread.is_alive():
                self._thread.join(timeout=0.5)
        finally:
            self.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self.base_url if self.running else "stopped"
        return f"<Sandbox {state}>"
