"""The sandbox WSGI application: dispatch, faults, the request log and the error boundary."""

from __future__ import annotations

import json
import logging
import random
import re
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, RequestRedirect, Rule
from werkzeug.wrappers import Request, Response

from .responses import (
    HTTPError,
    add_security_headers,
    api_response,
    esc,
    html_page,
    method_not_allowed,
    not_found,
    patch_vary,
    plain_json,
)
from .routes import CONTROL_PREFIX, ROUTES, Route
from .state import Store

logger = logging.getLogger("openhumans.sandbox")

FORMAT_KEY = "openhumans.sandbox.format"
REQUESTED_PATH_KEY = "openhumans.sandbox.requested_path"
# Spec §6: DRF's format_suffix_patterns route ``project.json`` (and ``.api``, ...) too.
_FORMAT_SUFFIX = re.compile(r"^(/api/direct-sharing/project(?:/[a-z-]+)*)\.([a-z0-9]+)/?$")


def negotiate(request: Request) -> str:
    """DRF's renderer choice between JSON and the browsable API (spec §A.4).

    Returns ``"json"``, ``"html"``, ``"not-found"`` (unknown ``?format=``) or
    ``"not-acceptable"``.
    """
    fmt = request.environ.get(FORMAT_KEY) or request.args.get("format")
    if fmt is not None:
        return {"json": "json", "api": "html"}.get(fmt, "not-found")
    header = request.headers.get("Accept", "").strip()
    if not header:
        return "json"
    # DRF orders by specificity, not by q: a browser's text/html wins over */*.
    kinds = [part.split(";", 1)[0].strip().lower() for part in header.split(",")]
    for group in (
        [k for k in kinds if "*" not in k],
        [k for k in kinds if k.endswith("/*") and k != "*/*"],
        [k for k in kinds if k == "*/*"],
    ):
        for kind in group:
            if kind in ("application/json", "application/*", "*/*"):
                return "json"
            if kind in ("text/html", "text/*"):
                return "html"
    return "not-acceptable"


def browsable(request: Request, response: Response) -> Response:
    """A minimal stand-in for DRF's browsable API page: the same answer as HTML."""
    try:
        pretty = json.dumps(json.loads(response.get_data()), indent=4, ensure_ascii=False)
    except ValueError:
        pretty = response.get_data(as_text=True)
    page = html_page(
        "Django REST framework",
        f"<section><h1>{esc(request.path)}</h1><pre><b>HTTP {response.status}</b>\n"
        f"{esc(pretty)}</pre></section>",
        response.status_code,
    )
    for name in ("Allow", "WWW-Authenticate", "Vary", "Expires", "Cache-Control"):
        if name in response.headers:
            page.headers[name] = response.headers[name]
    return page


class DropConnection(ConnectionAbortedError):
    """Raised after closing the client socket: werkzeug treats it as a dropped connection."""


class SandboxApp:
    """The WSGI callable. All state lives in :attr:`store`; handlers receive the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.routes: dict[str, Route] = {}
        rules = []
        for route in ROUTES:
            self.routes[route.path] = route
            rules.append(Rule(route.path, endpoint=route.path))
        self.url_map = Map(rules, strict_slashes=True, merge_slashes=False)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        suffixed = _FORMAT_SUFFIX.match(environ.get("PATH_INFO", ""))
        if suffixed:
            environ[REQUESTED_PATH_KEY] = environ["PATH_INFO"]
            environ[FORMAT_KEY] = suffixed.group(2)
            environ["PATH_INFO"] = suffixed.group(1) + "/"
        request = Request(environ)
        started = time.monotonic()
        status: int | str = 500
        try:
            response = self.handle(request)
            status = response.status_code
            return response(environ, start_response)
        except DropConnection:
            status = "dropped"
            raise
        finally:
            self.log_request(request, status, started)

    def handle(self, request: Request) -> Response:
        """Apply faults, route, add CORS headers, turn unexpected errors into a JSON 500."""
        response = self._handle(request)
        if (
            request.path.startswith("/api/")
            and response.mimetype == "application/json"
            and negotiate(request) == "html"
        ):
            response = browsable(request, response)
        if request.path.startswith("/api/"):
            # Spec §A.4/§6: django-cors-headers, allow-all, for ^/api/ only; it always
            # varies on origin and allows any origin that asks.
            patch_vary(response, "origin")
            if "Origin" in request.headers:
                response.headers["Access-Control-Allow-Origin"] = "*"
        if not request.path.startswith("/_storage/"):  # S3 sends none of Django's headers
            add_security_headers(response)
        return response

    def _handle(self, request: Request) -> Response:
        try:
            fault = self.apply_faults(request)
            if fault is not None:
                return fault
            if request.path.startswith("/api/"):
                # DRF negotiates the renderer before authenticating (APIView.initial).
                chosen = negotiate(request)
                if chosen == "not-found":
                    return api_response({"detail": "Not found."}, 404)
                if chosen == "not-acceptable":
                    return api_response(
                        {"detail": "Could not satisfy the request Accept header."}, 406
                    )
            if (
                request.method == "OPTIONS"
                and request.path.startswith("/api/")
                and "Origin" in request.headers
                and "Access-Control-Request-Method" in request.headers
            ):
                return self.preflight(request)
            return self.dispatch(request)
        except DropConnection:
            raise
        except HTTPError as err:
            return err.response
        except HTTPException as err:
            # werkzeug's own request errors (e.g. a client that disconnected mid-body).
            body = {"detail": err.description or err.name}
            if request.path.startswith("/api/"):
                return api_response(body, err.code or 400)
            return plain_json(body, err.code or 400)
        except Exception:
            logger.exception("sandbox: unexpected error on %s %s", request.method, request.path)
            return plain_json({"detail": "Internal sandbox error (see the server log)."}, 500)

    def dispatch(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match(request.path, method="GET")
        except RequestRedirect:
            # Spec §A.4: Django's APPEND_SLASH answers 301 to the slash URL, POSTs included.
            location = request.path + "/"
            if request.query_string:
                location += "?" + request.query_string.decode("latin-1")
            response = Response(b"", status=301)
            response.headers["Location"] = location
            return response
        except (NotFound, MethodNotAllowed):
            if request.path.startswith(CONTROL_PREFIX):
                return plain_json({"error": f"no control endpoint {request.path}"}, 404)
            return not_found()
        route = self.routes[endpoint]
        if route.methods is not None and request.method not in route.methods:
            if request.path.startswith(CONTROL_PREFIX):
                refused = plain_json(
                    {"error": f"method not allowed; use {route.allow_header}"}, 405
                )
                refused.headers["Allow"] = route.allow_header
                return refused
            return method_not_allowed(route.allow_header)
        try:
            return route.view(self.store, request, **args)
        except HTTPError as err:
            return err.response

    @staticmethod
    def preflight(request: Request) -> Response:
        """django-cors-headers answers preflights itself, before any view or auth."""
        response = Response(b"", status=200)
        response.headers["Access-Control-Allow-Headers"] = (
            "accept, accept-encoding, authorization, content-type, dnt, origin, user-agent, "
            "x-csrftoken, x-requested-with"
        )
        response.headers["Access-Control-Allow-Methods"] = "DELETE, GET, OPTIONS, PATCH, POST, PUT"
        response.headers["Access-Control-Max-Age"] = "86400"
        return response

    # --- faults ---

    def apply_faults(self, request: Request) -> Response | None:
        """Latency, error statuses and dropped connections for matching path prefixes."""
        path = request.path
        if path.startswith(CONTROL_PREFIX):
            return None
        store = self.store
        latency = 0.0
        action: dict[str, Any] | None = None
        with store.lock:
            for fault in list(store.faults):
                if not path.startswith(fault["endpoint"]):
                    continue
                latency += fault["latency_ms"] / 1000.0
                rate = fault["error_rate"]
                if fault["drop_connection"] and rate == 0:
                    rate = 1.0
                fires = action is None and rate > 0 and random.random() < rate
                if fires:
                    action = fault
                if fault["times"] is not None and (fires or rate == 0):
                    fault["times"] -= 1
                    if fault["times"] <= 0:
                        store.faults.remove(fault)
        if latency:
            time.sleep(latency)
        if action is None:
            return None
        if action["drop_connection"]:
            self.drop(request)
        status = action["status"]
        body = {"detail": f"Sandbox fault injection: {status}."}
        if path.startswith("/api/"):
            return api_response(body, status)
        return plain_json(body, status)

    @staticmethod
    def drop(request: Request) -> None:
        sock = request.environ.get("werkzeug.socket")
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        raise DropConnection("sandbox fault: connection dropped")

    # --- request log ---

    def log_request(self, request: Request, status: int | str, started: float) -> None:
        """Record method, path (no query: tokens never reach the log) and status."""
        path = request.environ.get(REQUESTED_PATH_KEY, request.path)
        if path.startswith(CONTROL_PREFIX):
            return
        entry = {
            "method": request.method,
            "path": path,
            "status": status,
            "duration_ms": round((time.monotonic() - started) * 1000, 3),
        }
        with self.store.lock:
            self.store.requests.append(entry)
            self.store.request_counts[f"{request.method} {path}"] += 1
