"""The project API's authentication matrix (spec §A.2, §A.3)."""

from __future__ import annotations

from dataclasses import dataclass

from werkzeug.wrappers import Request

from .responses import HTTPError, api_response
from .state import Store

REALM = 'Bearer realm="api"'
REALM_INVALID = (
    'Bearer realm="api",error="invalid_token",error_description="The access token is invalid."'
)


@dataclass(frozen=True)
class Caller:
    """Who is calling: a member's user token, or the project's master token."""

    kind: str  # "user" or "master"
    token: str
    pmid: str | None = None  # the token owner, for a user token

    @property
    def is_master(self) -> bool:
        return self.kind == "master"


def authorization_header(request: Request) -> str | None:
    """Spec §A.2: ``?access_token=`` is copied over any ``Authorization`` header."""
    if "access_token" in request.args:
        return "Bearer " + request.args.getlist("access_token")[-1]
    return request.headers.get("Authorization")


def body_token(request: Request) -> str | None:
    """Spec §A.2: oauthlib reads ``access_token`` from a form or multipart body (any method)
    when no ``Authorization`` header was sent; a JSON body is never looked at."""
    if request.mimetype not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return None
    try:
        values = request.form.getlist("access_token")
    except (ValueError, OSError):
        return None  # a broken body: the view's own parse reports it
    return values[-1] if values else None


def authenticate(request: Request, store: Store, *, allow_user: bool, allow: str) -> Caller:
    """Return the caller or raise :class:`HTTPError` with the exact 401 of spec §A.3.

    Mirrors the server: DOT's OAuth2 check first (user tokens), then the master-token check
    (DRF ``TokenAuthentication`` with keyword ``Bearer``). The ``WWW-Authenticate`` header
    comes from the first authenticator, which carries DOT's error attributes when it looked
    a bearer token up and found nothing.
    """
    header = authorization_header(request)
    parts = (header or "").split()
    bearer = parts[1] if len(parts) == 2 and parts[0].lower() == "bearer" else None
    if header is None and allow_user:
        # Only the user-token check reads the body; the master-token check never does.
        bearer = body_token(request)
    oauth_error = False

    def fail(detail: str) -> HTTPError:
        www = REALM_INVALID if oauth_error else REALM
        return HTTPError(
            api_response({"detail": detail}, 401, allow=allow, headers=[("WWW-Authenticate", www)])
        )

    with store.lock:
        if allow_user and bearer:
            record = store.access_tokens.get(bearer)
            if record is not None:
                if store.now() >= record["expires"]:
                    raise fail("Expired token.")
                return Caller("user", bearer, record["pmid"])
            oauth_error = True
        if not parts or parts[0].lower() != "bearer":
            raise fail("Authentication credentials were not provided.")
        if len(parts) == 1:
            raise fail("Invalid token header. No credentials provided.")
        if len(parts) > 2:
            raise fail("Invalid token header. Token string should not contain spaces.")
        token = parts[1]
        try:
            token = token.encode("latin-1").decode("utf-8")
        except UnicodeError:
            raise fail(
                "Invalid token header. Token string should not contain invalid characters."
            ) from None
        if token != store.config["master_token"]:
            raise fail("Invalid token.")
        if store.master_token_expired():
            raise fail("Expired token.")
        return Caller("master", token)
