"""The OAuth2 authorize page (spec §1.1): validation, the consent form, and the code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from ..responses import esc, html_page, not_found
from ..state import ALL_SCOPES, Store

ALLOWED_SCHEMES = ("http", "https", "openhumanshk", "resilienceproject")
NEW_MEMBER = "new"  # the consent form's "create a new member" choice
OAUTH_PARAMS = (
    "client_id",
    "response_type",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "approval_prompt",
    "origin",
)


# --- redirect URIs ---


def redirect_uri_allowed(uri: str, registered: str) -> bool:
    """DOT 2.x ``redirect_to_uri_allowed``: same scheme, netloc and path, and the registered
    query a subset of the asked one. A registered loopback IP without a port
    (``http://127.0.0.1/...``, ``http://[::1]/...``) accepts any port (RFC 8252 §7.3);
    ``localhost`` is not treated as loopback."""
    try:
        asked, allowed = urlsplit(uri), urlsplit(registered)
        allowed_port = allowed.port
        asked.port  # noqa: B018 - a malformed port raises ValueError
    except ValueError:
        return False
    if asked.scheme not in ALLOWED_SCHEMES:
        return False
    loopback = (
        allowed.scheme == "http"
        and allowed.hostname in ("127.0.0.1", "::1")
        and allowed_port is None
    )
    same_place = asked.scheme == allowed.scheme and asked.path == allowed.path
    if loopback:
        same_place = same_place and asked.hostname == allowed.hostname
    else:
        same_place = same_place and asked.netloc == allowed.netloc
    if not same_place:
        return False
    return set(parse_qsl(allowed.query)).issubset(set(parse_qsl(asked.query)))


def add_params(uri: str, params: list[tuple[str, str]]) -> str:
    """oauthlib's ``add_params_to_uri``: append to the existing query, form-encoded."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + params
    return urlunsplit(parts._replace(query=urlencode(query)))


# --- authorize ---


@dataclass
class AuthorizeRequest:
    """A validated authorize request, or the answer to give instead."""

    params: dict[str, str]
    fatal: Response | None = None  # an HTML error page, no redirect
    error_location: str | None = None  # a redirect carrying ?error=
    redirect_uri: str = ""
    scopes: list[str] = field(default_factory=list)
    state: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    origin: str = "external"


def validate_authorize(store: Store, values: MultiDict[str, str]) -> AuthorizeRequest:
    """Run the server's checks in its order (spec §1.1; oauthlib's code grant validation)."""
    params = {k: values.getlist(k)[-1] for k in values.keys() if values.getlist(k)}
    req = AuthorizeRequest(params=params)
    config = store.config
    # Open Humans' view looks the project up first: unknown client_id -> HTML 404.
    if params.get("client_id") != config["client_id"]:
        req.fatal = not_found()
        return req
    if not store.project["active"]:
        req.fatal = redirect("/direct-sharing/authorize-inactive/")
        return req
    for name in ("client_id", "response_type", "redirect_uri", "scope", "state"):
        if len(values.getlist(name)) > 1:
            req.fatal = _fatal(f"Duplicate {name} parameter.")
            return req
    registered = config["redirect_uri"]
    if "redirect_uri" in params:
        if not redirect_uri_allowed(params["redirect_uri"], registered):
            req.fatal = _fatal("Mismatching redirect URI.")
            return req
        req.redirect_uri = params["redirect_uri"]
    else:
        req.redirect_uri = registered
    req.state = params.get("state") or None
    req.origin = "open-humans" if params.get("origin") == "open-humans" else "external"

    def error(code: str, description: str | None = None) -> AuthorizeRequest:
        pairs = [("error", code)]
        if description:
            pairs.append(("error_description", description))
        if req.state:
            pairs.append(("state", req.state))
        req.error_location = add_params(req.redirect_uri, pairs)
        return req

    response_type = params.get("response_type")
    if response_type is None:
        return error("invalid_request", "Missing response_type parameter.")
    if response_type != "code":
        if response_type == "token" or "code" in response_type or response_type == "none":
            # Implicit and hybrid flows exist on the server but this app may not use them.
            return error("unauthorized_client")
        return error("unsupported_response_type")
    challenge = params.get("code_challenge")
    if challenge is not None:
        method = params.get("code_challenge_method") or "plain"
        if method not in ("plain", "S256"):
            return error("invalid_request", "Transform algorithm not supported.")
        req.code_challenge, req.code_challenge_method = challenge, method
    scope = params.get("scope")
    scopes = scope.split() if scope else list(ALL_SCOPES)
    if not scopes or any(s not in ALL_SCOPES for s in scopes):
        return error("invalid_scope")
    req.scopes = scopes
    return req


def _fatal(description: str) -> Response:
    body = (
        "<h1>Error: invalid_request</h1>"
        f"<p>{esc(description)}</p><p class=muted>No redirect: the redirect URI or the "
        "request itself cannot be trusted.</p>"
    )
    return html_page("Authorization error", f"<section>{body}</section>", 400)


def issue_code(store: Store, req: AuthorizeRequest, pmid: str) -> str:
    """Consent given: authorize the member and return the redirect with a fresh code."""
    store.authorize_member(pmid)
    code = store.create_code(
        pmid,
        redirect_uri=req.redirect_uri,
        scope=req.scopes,
        code_challenge=req.code_challenge,
        code_challenge_method=req.code_challenge_method,
    )
    pairs = [("code", code)]
    if req.state:
        pairs.append(("state", req.state))
    # Spec §1.1: Open Humans appends &origin=... to every successful redirect.
    return add_params(req.redirect_uri, pairs) + "&origin=" + req.origin


def denied_location(req: AuthorizeRequest) -> str:
    pairs = [("error", "access_denied")]
    if req.state:
        pairs.append(("state", req.state))
    return add_params(req.redirect_uri, pairs)


def redirect(location: str) -> Response:
    response = Response(b"", status=302)
    response.headers["Location"] = location
    return response


def authorize(store: Store, request: Request) -> Response:
    """``GET`` shows the consent page; ``POST`` is the consent form coming back."""
    try:
        values = request.form if request.method == "POST" else request.args
    except (ValueError, OSError):
        return _fatal("Malformed request body.")
    with store.lock:
        req = validate_authorize(store, values)
        if req.fatal is not None:
            return req.fatal
        if req.error_location is not None:
            return redirect(req.error_location)
        if request.method != "POST":
            return consent_page(store, req)
        if values.get("action") != "authorize":
            return redirect(denied_location(req))
        new_username = (values.get("new_username") or "").strip()
        pmid = (values.get("member") or "").strip()
        if pmid and pmid != NEW_MEMBER and new_username:
            # Both a chosen member and a typed name: never guess which one was meant.
            chosen = store.members.get(pmid)
            name = chosen["username"] if chosen else pmid
            return consent_page(
                store,
                req,
                error=f"You chose {name} and also typed the new name {new_username}. "
                "Choose an existing member, or create a new one, not both.",
                status=400,
            )
        if new_username:
            if store.member_by_username(new_username) is not None:
                return consent_page(store, req, error="That username is taken.", status=400)
            pmid = store.create_member(new_username, authorized=False)["project_member_id"]
        elif pmid == NEW_MEMBER:
            return consent_page(store, req, error="Type a name for the new member.", status=400)
        elif pmid not in store.members:
            return consent_page(
                store, req, error="Choose a member, or create a new one.", status=400
            )
        return redirect(issue_code(store, req, pmid))


def inactive(store: Store, request: Request) -> Response:
    """Where an inactive project's authorize link leads (spec §1.1 check 2)."""
    name = store.project["name"]
    return html_page(
        "Project inactive",
        f"<section><h1>{esc(name)} is not active</h1><p>This project is not accepting "
        "new members right now.</p></section>",
    )


def consent_page(
    store: Store, req: AuthorizeRequest, *, error: str | None = None, status: int = 200
) -> Response:
    """The sandbox's consent form: pick (or create) the member who is "logged in"."""
    project = store.project
    hidden = dict(req.params)
    hidden["redirect_uri"] = req.redirect_uri
    hidden["scope"] = " ".join(req.scopes)
    inputs = "".join(
        f'<input type=hidden name="{esc(k)}" value="{esc(v)}">'
        for k, v in hidden.items()
        if k in OAUTH_PARAMS
    )
    members = sorted(store.members.values(), key=lambda m: m["created"])
    # One radio group: an existing member, or "new". Typing a name picks "new" and choosing
    # a member clears the name (the server refuses the two together anyway).
    radios = "".join(
        f'<label><input type=radio name=member value="{esc(m["project_member_id"])}"'
        f"{' checked' if i == len(members) - 1 else ''} "
        "onchange=\"this.form.new_username.value=''\"> "
        f"{esc(m['username'])} <span class=muted>({esc(m['project_member_id'])})</span></label>"
        for i, m in enumerate(members)
    )
    scopes = ", ".join(esc(s) for s in req.scopes)
    error_html = f"<p class=error role=alert>{esc(error)}</p>" if error else ""
    body = f"""
<section><h1>Authorize {esc(project["name"])}</h1>
<p>The project <strong>{esc(project["name"])}</strong> asks to join your account.
Requested scopes: <code>{scopes}</code>.</p>
<p class=muted>This is the sandbox: there are no passwords. Sign in by choosing a member,
or create one. The project will be sent back to <code>{esc(req.redirect_uri)}</code>.</p>
{error_html}
<form method=post action="/direct-sharing/projects/oauth2/authorize/">{inputs}
<fieldset style="border:0;padding:0"><legend><strong>Sign in to the Open Humans sandbox
as</strong></legend>{radios}
<label><input type=radio name=member value="{NEW_MEMBER}" id=member-new
{"" if members else "checked"}> Create a new member named
<input type=text name=new_username autocomplete=off placeholder="new username"
aria-label="New member's username" oninput="this.form['member-new'].checked=true"></label>
</fieldset>
<button type=submit name=action value=authorize>Authorize project</button>
<button type=submit name=action value=deny class=secondary>Deny</button>
</form></section>"""
    return html_page(f"Authorize {project['name']}", body, status)


def control_authorize(store: Store, pmid: str, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The control plane's shortcut through consent: (status, JSON body)."""
    values: MultiDict[str, str] = MultiDict(
        {"client_id": store.config["client_id"], "response_type": "code"}
    )
    for name in ("redirect_uri", "state", "scope", "code_challenge", "code_challenge_method"):
        if data.get(name) is not None:
            values[name] = str(data[name])
    with store.lock:
        if pmid not in store.members:
            return 404, {"error": f"no member {pmid}"}
        req = validate_authorize(store, values)
        if req.fatal is not None:
            return 400, {"error": "invalid redirect_uri (no redirect would happen)"}
        if req.error_location is not None:
            return 400, {"error": "authorize request refused", "location": req.error_location}
        location = issue_code(store, req, pmid)
    code = dict(parse_qsl(urlsplit(location).query))["code"]
    return 200, {"location": location, "code": code}
