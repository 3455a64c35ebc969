"""The prologue every project API view shares, written once as a decorator.

A DRF view on the real server authenticates first, then checks the method (spec §A.3: an
unauthenticated PUT is a 401, an authenticated one a 405), answers ``OPTIONS`` with its
metadata, and only then parses the body. :func:`api_endpoint` does exactly that and hands the
view an :class:`ApiCall`; the view itself only does its own work.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from werkzeug.wrappers import Request, Response

from .api_auth import Caller, authenticate
from .request_bodies import Body, parse_api_body
from .responses import ALLOW_GET, ALLOW_POST, HTTPError, api_response
from .state import Store

READ = ("GET", "HEAD")
WRITE = ("POST",)
ApiView = Callable[..., Response]


@dataclass(frozen=True)
class ApiCall:
    """What the prologue found: who calls, the parsed body, and the ``Allow`` header."""

    caller: Caller | None
    body: Body
    allow: str

    @property
    def who(self) -> Caller:
        """The authenticated caller (for views that require a token)."""
        assert self.caller is not None, "an unauthenticated endpoint has no caller"
        return self.caller


def check_method(request: Request, methods: tuple[str, ...], allow: str, name: str) -> None:
    """405 for a wrong method; DRF's metadata answer for ``OPTIONS``."""
    if request.method == "OPTIONS":
        raise HTTPError(
            api_response(
                {
                    "name": name,
                    "description": "",
                    "renders": ["application/json", "text/html"],
                    "parses": [
                        "application/json",
                        "application/x-www-form-urlencoded",
                        "multipart/form-data",
                    ],
                },
                allow=allow,
            )
        )
    if request.method not in methods:
        raise HTTPError(
            api_response({"detail": f'Method "{request.method}" not allowed.'}, 405, allow=allow)
        )


def api_endpoint(
    name: str,
    *,
    methods: tuple[str, ...] = READ,
    auth: Literal["user", "master"] | None = "user",
) -> Callable[[ApiView], ApiView]:
    """Wrap ``view(store, request, call, **url_args)`` in the DRF prologue.

    ``name`` is the DRF view name shown by ``OPTIONS``; ``auth`` is ``"user"`` (user or
    master token), ``"master"`` (master token only) or ``None`` (public).
    """
    allow = ALLOW_POST if "POST" in methods else ALLOW_GET

    def decorate(view: ApiView) -> ApiView:
        @functools.wraps(view)
        def handler(store: Store, request: Request, **url_args: Any) -> Response:
            caller = None
            if auth is not None:
                caller = authenticate(request, store, allow_user=auth == "user", allow=allow)
            check_method(request, methods, allow, name)
            body = parse_api_body(request, allow) if "POST" in methods else Body({}, {}, False)
            return view(store, request, ApiCall(caller, body, allow), **url_args)

        return handler

    return decorate
