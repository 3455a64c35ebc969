"""Fixtures for the sandbox conformance suite.

The suite checks ``openhumans.sandbox`` against ``shared/spec/open-humans-api.md`` over real
sockets with plain ``httpx``; it never uses ``openhumans.client``, so the client and the
sandbox are checked independently. The sandbox's Python control plane is used only to set up
state (members, tokens, files) and to read what a real server would have sent elsewhere
(inbox, webhooks).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx
import pytest

CLIENT_ID = "conformance-client"
CLIENT_SECRET = "conformance-secret"
REDIRECT_URI = "http://localhost:8000/openhumans/complete"

API = "/api/direct-sharing/project/"
AUTHORIZE = "/direct-sharing/projects/oauth2/authorize/"
TOKEN = "/oauth2/token/"

# Spec §1.1: without `scope` the default is every configured scope.
DEFAULT_SCOPES = frozenset("read write american-gut go-viral pgp wildlife open-humans".split())

# Spec §A.3.
NO_CREDENTIALS = "Authentication credentials were not provided."
INVALID_TOKEN = "Invalid token."
EXPIRED_TOKEN = "Expired token."
REALM = 'Bearer realm="api"'
REALM_INVALID = (
    'Bearer realm="api",error="invalid_token",error_description="The access token is invalid."'
)
MEMBER_INVALID = {"project_member_id": "project_member_id is invalid"}


@pytest.fixture(scope="module")
def sandbox_server():
    """One sandbox per test module; ``oh`` resets it before each test."""
    from openhumans.sandbox import Sandbox

    with Sandbox(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uri=REDIRECT_URI,
        host="127.0.0.1",
        port=0,
    ) as server:
        yield server


@pytest.fixture
def oh(sandbox_server):
    """The running sandbox, emptied of members, files, inbox, webhooks and faults."""
    sandbox_server.reset()
    yield sandbox_server


@pytest.fixture
def http(oh):
    """A plain HTTP client on the sandbox; redirects are never followed implicitly."""
    with httpx.Client(base_url=oh.base_url, timeout=15.0, follow_redirects=False) as client:
        yield client


@dataclass
class Member:
    pmid: str
    username: str | None
    access_token: str
    refresh_token: str


@pytest.fixture
def new_member(oh):
    """Factory: an authorized member with a live user token pair (and optional files)."""
    counter = iter(range(10_000))

    def make(username: str | None = None, files: int = 0, **file_kwargs: Any) -> Member:
        created = oh.create_member(username=username or f"member{next(counter)}")
        pmid = created["project_member_id"]
        tokens = oh.issue_tokens(pmid)
        if files:
            oh.add_files(pmid, count=files, **file_kwargs)
        return Member(
            pmid=pmid,
            username=created.get("username"),
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
        )

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_never_cache(response: httpx.Response) -> None:
    """Spec §A.4: every API view is wrapped in Django's ``never_cache``."""
    directives = {d.strip() for d in response.headers.get("cache-control", "").split(",")}
    assert directives == {"max-age=0", "no-cache", "no-store", "must-revalidate", "private"}, (
        response.headers.get("cache-control")
    )
    assert "expires" in response.headers


def assert_auth_error(response: httpx.Response, detail: str, www_authenticate: str) -> None:
    """Spec §A.3: 401, ``{"detail": ...}`` and the exact ``WWW-Authenticate``."""
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"detail": detail}
    assert response.headers.get("www-authenticate") == www_authenticate


def assert_token_headers(response: httpx.Response) -> None:
    """Spec §1.2/§1.3: token endpoint answers are JSON and never cached."""
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("cache-control") == "no-store"
    assert response.headers.get("pragma") == "no-cache"


def multi(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Form pairs as httpx wants them: repeated keys become a list, order kept."""
    out: dict[str, list[str]] = {}
    for key, value in pairs:
        out.setdefault(key, []).append(value)
    return out


def query(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def without_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def advance_clock(oh, seconds: float) -> None:
    """Move the sandbox's clock forward (asked for in sandbox-bugs.md; spec §1.6 lifetimes)."""
    advance = getattr(oh, "advance_clock", None)
    if advance is None:
        pytest.fail("the sandbox offers no clock knob (oh.advance_clock) to test lifetimes")
    advance(seconds)


def hmac_sha1(secret: str, body: bytes) -> str:
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


# --- the authorize page ---------------------------------------------------------------


@dataclass
class Form:
    action: str | None
    method: str
    hidden: list[tuple[str, str]] = field(default_factory=list)
    fields: dict[str, list[str]] = field(default_factory=dict)  # name -> offered values
    buttons: list[tuple[str, str, str]] = field(default_factory=list)  # name, value, label


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._button: list[str] | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(action=a.get("action"), method=a.get("method", "get").lower()))
            return
        if not self.forms:
            return
        form = self.forms[-1]
        if tag == "input":
            kind = a.get("type", "text").lower()
            name = a.get("name")
            if not name:
                return
            if kind == "hidden":
                form.hidden.append((name, a.get("value", "")))
            elif kind == "submit":
                form.buttons.append((name, a.get("value", ""), a.get("value", "")))
            else:
                form.fields.setdefault(name, []).append(a.get("value", ""))
        elif tag == "button" and a.get("name"):
            self._button = [a["name"], a.get("value", ""), ""]
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
            form.fields.setdefault(a["name"], [])
        elif tag == "option" and self._select:
            form.fields[self._select].append(a.get("value", ""))

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button[2] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None:
            name, value, label = self._button
            self.forms[-1].buttons.append((name, value, label.strip()))
            self._button = None
        elif tag == "select":
            self._select = None


def consent_form(html: str) -> Form:
    """The one POST form of the authorize page that offers Authorize/Deny."""
    parser = _FormParser()
    parser.feed(html)
    forms = [f for f in parser.forms if f.method == "post" and f.buttons]
    assert len(forms) == 1, f"expected one consent form, found {len(forms)}"
    return forms[0]


@pytest.fixture
def authorize_page(oh, http):
    """Drive the authorize page like a browser: GET it, then POST the form back.

    Returns the response to the POST (a redirect to the project, normally).
    """

    def drive(
        params: dict[str, str],
        *,
        member: str | None = None,
        new_username: str | None = None,
        action: str = "authorize",
    ) -> httpx.Response:
        page = http.get(AUTHORIZE, params=params)
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/html")
        form = consent_form(page.text)
        actions = {value for name, value, _ in form.buttons if name == "action"}
        assert {"authorize", "deny"} <= actions, form.buttons
        data = list(form.hidden)
        if member is not None:
            data.append(("member", member))
        if new_username is not None:
            data.append(("new_username", new_username))
        data.append(("action", action))
        target = urljoin(str(page.url), form.action) if form.action else str(page.url)
        return http.post(target, data=multi(data))

    return drive


def code_from(response: httpx.Response) -> str:
    assert response.status_code == 302, response.text
    params = dict(query(response.headers["location"]))
    assert "code" in params, response.headers["location"]
    return params["code"]


@pytest.fixture
def get_code(oh, authorize_page):
    """Factory: a fresh authorization code for a member, obtained through the page."""

    def make(pmid: str, **params: str) -> str:
        base = {"client_id": oh.client_id, "response_type": "code"}
        base.update(params)
        return code_from(authorize_page(base, member=pmid))

    return make


# --- a webhook receiver ----------------------------------------------------------------


@dataclass
class Delivery:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    received_at: float


class WebhookReceiver:
    """A tiny threaded HTTP server that records every request it gets.

    ``statuses`` is consumed one per request (the last one repeats); ``delay`` is slept
    before answering, so tests can tell whether the sender waited.
    """

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.statuses: list[int] = [200]
        self.delay = 0.0
        self.on_delivery: Any = None  # called with the Delivery before answering
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.deliveries.append(
                        Delivery(
                            method="POST",
                            path=self.path,
                            headers={k.lower(): v for k, v in self.headers.items()},
                            body=body,
                            received_at=time.monotonic(),
                        )
                    )
                    status = (
                        receiver.statuses.pop(0)
                        if len(receiver.statuses) > 1
                        else receiver.statuses[0]
                    )
                if receiver.on_delivery is not None:
                    receiver.on_delivery(receiver.deliveries[-1])
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/openhumans/deauth"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_receiver():
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def project_settings(oh):
    """Change the sandbox project's settings for one test, then put them back."""
    original = oh.config()["project"]
    changed: set[str] = set()

    def change(**values: Any) -> None:
        changed.update(values)
        oh.configure(project=values)

    yield change
    if changed:
        oh.configure(project={k: original[k] for k in changed})
