"""Drive a running sandbox over its JSON control plane: :class:`SandboxClient`."""

from __future__ import annotations

import base64
import ssl
from typing import Any

import httpx


class SandboxError(RuntimeError):
    """The control plane refused a request; ``status`` and ``body`` say why."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"sandbox control plane answered {status}: {body}")
        self.status = status
        self.body = body


class SandboxClient:
    """Python wrappers over the JSON control plane of a sandbox at ``base_url``.

    Every method is one HTTP call to ``/_sandbox/...``, so tests in another process can do
    the same thing over HTTP. Raises :class:`SandboxError` on a 4xx/5xx answer.
    """

    def __init__(self, base_url: str, *, timeout: float = 60.0, verify: str | bool = True) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._verify = verify  # True, False, or a CA file (a TLS sandbox's own certificate)
        self._http: httpx.Client | None = None

    # --- plumbing ---

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            verify: ssl.SSLContext | bool = (
                ssl.create_default_context(cafile=self._verify)
                if isinstance(self._verify, str)
                else self._verify
            )
            self._http = httpx.Client(base_url=self.base_url, timeout=self._timeout, verify=verify)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def _call(
        self, method: str, path: str, json: dict[str, Any] | None = None, **params: Any
    ) -> Any:
        query = {k: v for k, v in params.items() if v is not None}
        response = self.http.request(method, "/_sandbox/" + path, json=json, params=query)
        body = response.json() if response.content else None
        if response.status_code >= 400:
            raise SandboxError(response.status_code, body)
        return body

    # --- configuration ---

    def config(self) -> dict[str, Any]:
        """The sandbox configuration: client id/secret, master token, redirect URI, ..."""
        return self._call("GET", "config/")

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change ``webhook_url``, ``webhook_secret``, ``access_token_lifetime``,
        ``redirect_uri``, ``client_id``, ``client_secret``, ``project={...}``,
        ``master_token_expires_in`` (seconds, ``None`` = never) or ``regenerate_master_token``.
        """
        return self._call("POST", "config/", changes)

    @property
    def client_id(self) -> str:
        return str(self.config()["client_id"])

    @property
    def client_secret(self) -> str:
        return str(self.config()["client_secret"])

    @property
    def redirect_uri(self) -> str:
        return str(self.config()["redirect_uri"])

    @property
    def master_token(self) -> str:
        return str(self.config()["master_token"])

    def expire_master_token(self) -> None:
        """Make the master token past its 24 hours (it is then refused: ``Expired token.``)."""
        self.configure(master_token_expires_in=-1)

    def regenerate_master_token(self) -> str:
        """A new master token with a fresh 24 hours, as the project page does."""
        return str(self.configure(regenerate_master_token=True)["master_token"])

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        """Move the sandbox clock forward: tokens, codes, keys and URLs expire by it."""
        return self._call("POST", "clock/", {"advance": seconds})

    def reset(self) -> None:
        """Forget members, tokens, files, inbox, webhooks, the request log and faults."""
        self._call("POST", "reset/")

    # --- members and tokens ---

    def create_member(
        self,
        username: str | None = None,
        *,
        project_member_id: str | None = None,
        authorized: bool = True,
    ) -> dict[str, Any]:
        """Create a member (joined and authorized unless ``authorized=False``)."""
        body: dict[str, Any] = {"authorized": authorized}
        if username is not None:
            body["username"] = username
        if project_member_id is not None:
            body["project_member_id"] = project_member_id
        return self._call("POST", "members/", body)

    def members(self) -> list[dict[str, Any]]:
        return self._call("GET", "members/")

    def member(self, pmid: str) -> dict[str, Any]:
        return self._call("GET", f"members/{pmid}/")

    def issue_tokens(
        self, pmid: str, *, scope: str | None = None, expires_in: int | None = None
    ) -> dict[str, Any]:
        """A fresh token pair for the member, shaped like the token endpoint's body."""
        body: dict[str, Any] = {}
        if scope is not None:
            body["scope"] = scope
        if expires_in is not None:
            body["expires_in"] = expires_in
        return self._call("POST", f"members/{pmid}/tokens/", body)

    def authorize(
        self,
        pmid: str,
        state: str | None = None,
        code_challenge: str | None = None,
        code_challenge_method: str | None = None,
        redirect_uri: str | None = None,
        scope: str | None = None,
    ) -> str:
        """Consent on the member's behalf; return the redirect URL carrying ``code``."""
        body = {
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": code_challenge_method,
            "redirect_uri": redirect_uri,
            "scope": scope,
        }
        result = self._call("POST", f"members/{pmid}/authorize/", body)
        return str(result["location"])

    def leave(self, pmid: str, erasure_requested: bool = False) -> list[dict[str, Any]]:
        """The member leaves: revoke, delete their tokens, send the deauthorization webhook."""
        result = self._call(
            "POST", f"members/{pmid}/leave/", {"erasure_requested": erasure_requested}
        )
        return result["webhooks"]

    def expire_access_tokens(self, pmid: str) -> int:
        """Make the member's access tokens expired (refresh tokens still work)."""
        return int(self._call("POST", f"members/{pmid}/expire-tokens/")["expired"])

    # --- files ---

    def add_files(
        self,
        pmid: str,
        count: int = 1,
        basename: str = "data.csv",
        content: bytes | str = b"sandbox file content\n",
        metadata: dict[str, Any] | None = None,
        *,
        datatypes: list[int] | None = None,
        source: str | None = None,
    ) -> list[int]:
        """Add ``count`` completed files at once; ``{i}`` in ``basename`` becomes 1..count."""
        raw = content.encode("utf-8") if isinstance(content, str) else content
        body: dict[str, Any] = {
            "count": count,
            "basename": basename,
            "content_base64": base64.b64encode(raw).decode("ascii"),
        }
        if metadata is not None:
            body["metadata"] = metadata
        if datatypes is not None:
            body["datatypes"] = datatypes
        if source is not None:
            body["source"] = source
        return list(self._call("POST", f"members/{pmid}/files/", body)["ids"])

    def files(self, pmid: str) -> list[dict[str, Any]]:
        """The member's completed files, in the exchange-member listing shape."""
        return self._call("GET", f"members/{pmid}/files/")

    # --- what the sandbox recorded ---

    def inbox(self, project_member_id: str | None = None) -> list[dict[str, Any]]:
        """Messages sent through ``message/``: project_member_id, subject, message, sent_at."""
        return self._call("GET", "inbox/", project_member_id=project_member_id)

    def webhooks(self, project_member_id: str | None = None) -> list[dict[str, Any]]:
        """Webhook POSTs sent: url, headers, body (str), status, error, attempt."""
        return self._call("GET", "webhooks/", project_member_id=project_member_id)

    def request_log(self) -> dict[str, Any]:
        """``{"requests": [{"method","path","status",...}], "counts": {"GET /path/": n},
        "connections_opened": n}`` (TCP connections accepted since the last clear)."""
        return self._call("GET", "requests/")

    def connections(self) -> dict[str, int]:
        """``{"opened": n, "open": m}``: TCP connections accepted since the last clear of
        the request log (this client's own included), and those open now."""
        return self._call("GET", "connections/")

    def clear_request_log(self) -> None:
        """Forget logged requests, per-path counts and the connection count."""
        self._call("DELETE", "requests/")

    # --- faults ---

    def set_fault(
        self,
        endpoint: str = "/",
        latency_ms: float = 0,
        error_rate: float = 0.0,
        status: int = 503,
        drop_connection: bool = False,
        times: int | None = None,
    ) -> dict[str, Any]:
        """Inject a fault for paths starting with ``endpoint``.

        ``latency_ms`` is added to every matching request. With probability ``error_rate``
        the request fails: with ``status``, or by closing the connection without an answer
        when ``drop_connection`` is set (``drop_connection`` with ``error_rate=0`` drops
        every request). ``times`` limits the fault to that many matching requests.
        """
        body = {
            "endpoint": endpoint,
            "latency_ms": latency_ms,
            "error_rate": error_rate,
            "status": status,
            "drop_connection": drop_connection,
            "times": times,
        }
        return self._call("POST", "faults/", body)

    def clear_faults(self) -> None:
        self._call("DELETE", "faults/")
