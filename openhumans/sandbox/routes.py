"""Every URL the sandbox serves: path, handler, and the methods the route itself enforces.

A handler is ``view(store, request, **url_args) -> Response``: it gets the store it works
on, never the application object. Project API views take no ``methods`` here, because the
real server authenticates before it checks the method (their ``api_endpoint`` decorator
does both, in that order); the S3 stand-in answers S3's own 405. Every other route gets its
405 from the table: Django's empty one with ``Allow``, or JSON on the control plane.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from werkzeug.wrappers import Response

from .handlers import (
    authorization,
    control_plane,
    pages,
    project_api,
    project_files,
    public_api,
    storage,
    token_endpoint,
)

View = Callable[..., Response]
CONTROL_PREFIX = "/_sandbox/"
P = "/api/direct-sharing/project/"
GET = ("GET", "HEAD")


@dataclass(frozen=True)
class Route:
    """One URL rule. ``methods=None`` leaves every method to the view."""

    path: str
    view: View
    methods: tuple[str, ...] | None = None
    allow: str | None = None  # the 405's Allow header when it differs from ``methods``

    @property
    def allow_header(self) -> str:
        return self.allow or ", ".join(self.methods or ())


def control(path: str, view: View, *methods: str) -> Route:
    return Route(CONTROL_PREFIX + path, view, methods)


ROUTES: list[Route] = [
    # The project API (spec §2); public resources it links to (§2.10).
    Route(P, project_api.project),
    Route(P + "exchange-member/", project_api.exchange_member),
    Route(P + "members/", project_api.members),
    Route(P + "message/", project_api.message),
    Route(P + "remove-members/", project_api.remove_members),
    Route(P + "files/upload/direct/", project_files.upload_direct),
    Route(P + "files/upload/complete/", project_files.upload_complete),
    Route(P + "files/upload/", project_files.upload),
    Route(P + "files/delete/", project_files.delete),
    Route("/api/public/datatypes/", public_api.datatypes),
    Route("/api/public/datatype/<dt_id>/", public_api.datatype),
    Route("/api/public/project/<project_id>/", public_api.project),
    # OAuth2 (spec §1).
    Route("/oauth2/token/", token_endpoint.token, ("POST",), "POST, OPTIONS"),
    Route("/oauth2/revoke_token/", token_endpoint.revoke, ("POST",), "POST, OPTIONS"),
    Route(
        "/direct-sharing/projects/oauth2/authorize/",
        authorization.authorize,
        ("GET", "HEAD", "POST"),
        "GET, POST, HEAD, OPTIONS",
    ),
    Route("/direct-sharing/authorize-inactive/", authorization.inactive, GET),
    # Files: the download redirector (§2.9) and the S3 stand-in (§2.6 step 2).
    Route("/data-management/datafile-download/<file_id>/", storage.download, GET),
    Route("/_storage/<path:key>", storage.storage),
    # Pages for people.
    Route("/", pages.index, GET),
    Route("/favicon.ico", pages.favicon, GET),
    Route("/members/<pmid>/", pages.member_page, GET),
    Route("/members/<pmid>/leave/", pages.leave, ("POST",)),
    # The control plane.
    control("members/", control_plane.members, "GET", "POST"),
    control("members/<pmid>/", control_plane.member, "GET"),
    control("members/<pmid>/tokens/", control_plane.tokens, "POST"),
    control("members/<pmid>/authorize/", control_plane.authorize, "POST"),
    control("members/<pmid>/files/", control_plane.files, "GET", "POST"),
    control("members/<pmid>/leave/", control_plane.leave, "POST"),
    control("members/<pmid>/expire-tokens/", control_plane.expire_tokens, "POST"),
    control("inbox/", control_plane.inbox, "GET", "DELETE"),
    control("webhooks/", control_plane.webhooks, "GET", "DELETE"),
    control("requests/", control_plane.requests_log, "GET", "DELETE"),
    control("connections/", control_plane.connections, "GET"),
    control("faults/", control_plane.faults, "GET", "POST", "DELETE"),
    control("reset/", control_plane.reset, "POST"),
    control("clock/", control_plane.clock, "GET", "POST"),
    control("config/", control_plane.config, "GET", "POST"),
]
