"""The project API under ``/api/direct-sharing/`` (spec §2.1–§2.5); uploads live in files.py."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode

from werkzeug.wrappers import Request, Response

from . import webhook
from .auth import Caller, authenticate
from .forms import (
    FieldError,
    check_member_ids,
    checkbox,
    clean_char,
    split_member_ids,
)
from .state import Store, api_datetime
from .web import ALLOW_GET, ALLOW_POST, HTTPError, api_response, parse_api_body, server_error

if TYPE_CHECKING:
    from .app import SandboxApp

MEMBER_INVALID = {"project_member_id": "project_member_id is invalid"}
DEFAULT_LIMIT = 100  # spec §2.2: the paginator's default; no maximum
MEMBERS_FILES_SHOWN = 10  # spec §2.3: at most 10 files per member item
MESSAGE_PREFIX = "[Open Humans Project Message] "
_PMID_TOKEN = re.compile(r"\{\{\s*PROJECT_MEMBER_ID\s*\}\}")


# --- shared pieces ---


def check_method(request: Request, methods: tuple[str, ...], allow: str, name: str) -> None:
    """After authentication (spec §A.3): 405 for a wrong method, DRF metadata for OPTIONS."""
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


def host_url(request: Request) -> str:
    return request.host_url.rstrip("/")


def source_project_id(source: str) -> str:
    return source.rsplit("-", 1)[-1]


def file_json(store: Store, record: dict[str, Any], base: str) -> dict[str, Any]:
    """``DataFileSerializer`` (spec §2.2); every call mints a new 1-hour download key."""
    key = store.new_download_key(record["id"])
    return {
        "id": record["id"],
        "basename": record["basename"],
        "created": api_datetime(record["created"]),
        "datatypes": [f"{base}/api/public/datatype/{i}/" for i in record["datatypes"]],
        "download_url": f"{base}/data-management/datafile-download/{record['id']}/?key={key}",
        "metadata": record["metadata"],
        "source": record["source"],
        "source_project": f"{base}/api/public/project/{source_project_id(record['source'])}/",
    }


def _positive_int(text: str, strict: bool) -> int:
    value = int(text)
    if value < 0 or (strict and value == 0):
        raise ValueError(text)
    return value


def _with_query(url: str, query: str, changes: dict[str, Any], remove: tuple[str, ...]) -> str:
    """DRF ``replace_query_param``/``remove_query_param``: every parameter, sorted by key."""
    params = parse_qs(query, keep_blank_values=True)
    for key, value in changes.items():
        params[key] = [str(value)]
    for key in remove:
        params.pop(key, None)
    return url + "?" + urlencode(sorted(params.items()), doseq=True)


def paginate(request: Request, count: int) -> tuple[int, int, str | None, str | None]:
    """DRF ``LimitOffsetPagination``: (limit, offset, next, previous), links absolute."""
    try:
        limit = _positive_int(request.args["limit"], strict=True)
    except (KeyError, ValueError):
        limit = DEFAULT_LIMIT
    try:
        offset = _positive_int(request.args["offset"], strict=False)
    except (KeyError, ValueError):
        offset = 0
    base = host_url(request) + request.path
    query = request.query_string.decode("latin-1")
    next_url = None
    if offset + limit < count:
        next_url = _with_query(base, query, {"limit": limit, "offset": offset + limit}, ())
    previous_url = None
    if offset > 0:
        if offset - limit <= 0:
            previous_url = _with_query(base, query, {"limit": limit}, ("offset",))
        else:
            previous_url = _with_query(base, query, {"limit": limit, "offset": offset - limit}, ())
    return limit, offset, next_url, previous_url


def caller_member(
    app: SandboxApp, caller: Caller, body: Any, *, missing_is_field_error: bool, allow: str
) -> dict[str, Any]:
    """The member an upload/delete/complete acts on (spec §A.5); raises the 400 answers."""
    store = app.store
    if caller.is_master:
        raw = body.get("project_member_id")
        try:
            pmid = clean_char(raw)
        except FieldError as err:
            if missing_is_field_error:
                raise HTTPError(
                    api_response({"project_member_id": [str(err)]}, 400, allow=allow)
                ) from None
            raise HTTPError(api_response(MEMBER_INVALID, 400, allow=allow)) from None
    else:
        pmid = caller.pmid
    member = store.members.get(pmid or "")
    if not store.is_authorized(member):
        raise HTTPError(api_response(MEMBER_INVALID, 400, allow=allow))
    assert member is not None
    return member


def leave_project(app: SandboxApp, pmid: str, erasure_requested: bool) -> list[dict[str, Any]]:
    """Spec §2.5/§3: revoke, delete the member's tokens, then send the webhook synchronously.

    The webhook goes out with the store unlocked: the project's handler may call back.
    """
    store = app.store
    with store.lock:
        store.revoke_member(pmid, erasure_requested)
        erasure = store.members[pmid]["erasure_requested"]
        url = store.config.get("webhook_url") or ""
        secret = store.config.get("webhook_secret") or ""
        now = store.now_iso()
    if not webhook.is_valid_webhook_url(url):
        return []
    deliveries = webhook.deliver(url, secret, pmid, erasure, now)
    with store.lock:
        store.webhooks.extend(deliveries)
        store.changed()
    return deliveries


# --- §2.1 project ---


def project(app: SandboxApp, request: Request) -> Response:
    store = app.store
    authenticate(request, store, allow_user=True, allow=ALLOW_GET)
    check_method(request, ("GET", "HEAD"), ALLOW_GET, "Project Data")
    with store.lock:
        p = store.project
        active = sum(1 for m in store.members.values() if store.is_active(m))
        return api_response(
            {
                "active": p["active"],
                "approved": p["approved"],
                "authorized_members": active,
                "badge_image": p["badge_image"],
                "contact_email": p["contact_email"],
                "id": p["id"],
                "id_label": store.id_label,
                "info_url": p["info_url"],
                "is_academic_or_nonprofit": p["is_academic_or_nonprofit"],
                "is_study": p["is_study"],
                "leader": p["leader"],
                "long_description": p["long_description"],
                "name": p["name"],
                "organization": p["organization"],
                "registered_datatypes": [
                    f"/api/public/datatype/{i}/" for i in p["registered_datatypes"]
                ],
                "requested_sources": [
                    f"/api/public/project/{source_project_id(s)}/" for s in p["requested_sources"]
                ],
                "request_sources_access": list(p["requested_sources"]),
                "request_username_access": p["request_username_access"],
                "returned_data_description": p["returned_data_description"],
                "short_description": p["short_description"],
                "slug": p["slug"],
                "type": "oauth2",
            }
        )


# --- §2.2 exchange-member ---


def exchange_member(app: SandboxApp, request: Request) -> Response:
    store = app.store
    caller = authenticate(request, store, allow_user=True, allow=ALLOW_GET)
    check_method(request, ("GET", "HEAD"), ALLOW_GET, "Project Member Exchange")
    with store.lock:
        if caller.is_master:
            # Spec §2.2: no state check with a master token (a revoked member still lists);
            # §6 choice: a missing project_member_id is a 400, not the server's 500.
            pmid = request.args.getlist("project_member_id")[-1:] or [""]
            member = store.members.get(pmid[0])
            if member is None or not (member["joined"] or member["revoked"]):
                return api_response(MEMBER_INVALID, 400)
        else:
            member = store.members[caller.pmid or ""]
        store.prune_download_keys()
        files = store.member_files(member)
        limit, offset, next_url, previous_url = paginate(request, len(files))
        base = host_url(request)
        body: dict[str, Any] = {
            "count": len(files),
            "next": next_url,
            "previous": previous_url,
            "created": api_datetime(member["created"]),
            "project_member_id": member["project_member_id"],
            "sources_shared": list(member["sources_shared"]),
        }
        if store.project["request_username_access"]:
            body["username"] = member["username"]
        body["data"] = [file_json(store, f, base) for f in files[offset : offset + limit]]
    return api_response(body)


# --- §2.3 members ---


def members(app: SandboxApp, request: Request) -> Response:
    store = app.store
    authenticate(request, store, allow_user=False, allow=ALLOW_GET)
    check_method(request, ("GET", "HEAD"), ALLOW_GET, "Project Members")
    with store.lock:
        active = [m for m in store.members.values() if store.is_active(m)]
        active.sort(key=lambda m: m["created"])
        if active and "access_token" not in request.args:
            # Spec §A.2/§2.3: the serializer reads request.GET["access_token"] -> KeyError.
            return server_error()
        token = request.args.getlist("access_token")[-1] if active else ""
        limit, offset, next_url, previous_url = paginate(request, len(active))
        base = host_url(request)
        store.prune_download_keys()
        results = []
        for member in active[offset : offset + limit]:
            files = store.member_files(member)
            pmid = member["project_member_id"]
            item: dict[str, Any] = {
                "created": api_datetime(member["created"]),
                "project_member_id": pmid,
                "file_count": len(files),
                # Spec §2.3: the token is pasted in without URL-encoding.
                "exchange_member": (
                    f"{base}/api/direct-sharing/project/exchange-member/"
                    f"?project_member_id={pmid}&access_token={token}"
                ),
                "sources_shared": list(member["sources_shared"]),
            }
            if store.project["request_username_access"]:
                item["username"] = member["username"]
            item["data"] = [file_json(store, f, base) for f in files[:MEMBERS_FILES_SHOWN]]
            results.append(item)
    return api_response(
        {"count": len(active), "next": next_url, "previous": previous_url, "results": results}
    )


# --- §2.4 message ---


def message(app: SandboxApp, request: Request) -> Response:
    store = app.store
    caller = authenticate(request, store, allow_user=True, allow=ALLOW_POST)
    check_method(request, ("POST",), ALLOW_POST, "Project Message")
    body = parse_api_body(request)
    errors: dict[str, list[str]] = {}
    with store.lock:
        if caller.is_master:
            all_members = checkbox(body, "all_members")
            ids = split_member_ids(body.get("project_member_ids"))
        else:
            # Spec §2.4: a user token messages only its owner.
            all_members, ids = False, [caller.pmid or ""]
        try:
            if ids:
                check_member_ids(ids, store)
        except FieldError as err:
            errors["project_member_ids"] = [str(err)]
        try:
            text = clean_char(body.get("message")) or ""
        except FieldError as err:
            errors["message"] = [str(err)]
        subject = clean_char(body.get("subject"), required=False)
        if "project_member_ids" not in errors:
            if not all_members and not ids:
                errors["__all__"] = [
                    "You must specify either all members or provide a list of IDs."
                ]
            elif all_members and ids:
                errors["__all__"] = [
                    "You must specify either all members or provide a list of IDs but not both."
                ]
        if errors:
            return api_response({"errors": errors}, 400, allow=ALLOW_POST)
        if all_members:
            ids = [pmid for pmid, m in store.members.items() if store.is_active(m)]
        project_name = store.project["name"]
        full_subject = MESSAGE_PREFIX + (subject or f'From "{project_name}"')
        sent_at = store.now_iso()
        for pmid in dict.fromkeys(ids):
            rendered, error = render_message(text, pmid)
            entry = {
                "project_member_id": pmid,
                "subject": full_subject,
                "message": rendered,
                "sent_at": sent_at,
                "project_subject": subject,
                "from": f"{project_name} <support@openhumans.org>",
                "reply_to": store.project["contact_email"],
            }
            if error:
                entry["error"] = error
            store.inbox.append(entry)
        store.changed()
    return api_response("success", allow=ALLOW_POST)


def render_message(text: str, pmid: str) -> tuple[str, str | None]:
    """Spec §2.4: the message is a Django template with ``PROJECT_MEMBER_ID`` in context.

    Uses Django's standalone template engine (no settings needed for plain tags and most
    filters). If rendering fails (a syntax error, or a filter that needs settings), the
    member would get no email; the inbox keeps the text with only the ID substituted and
    the error.
    """
    try:
        from django.template import Context, Engine

        rendered = Engine().from_string(text).render(Context({"PROJECT_MEMBER_ID": pmid}))
    except Exception as err:  # noqa: BLE001 - any template failure means "not delivered"
        return _PMID_TOKEN.sub(pmid, text), f"{type(err).__name__}: {err}"
    return str(rendered), None


# --- §2.5 remove-members ---


def remove_members(app: SandboxApp, request: Request) -> Response:
    store = app.store
    caller = authenticate(request, store, allow_user=True, allow=ALLOW_POST)
    check_method(request, ("POST",), ALLOW_POST, "Project Remove Members")
    body = parse_api_body(request)
    if caller.is_master:
        ids = split_member_ids(body.get("project_member_ids"))
        if not ids:
            return api_response(
                {"errors": {"__all__": ["You must provide a list of project member IDs."]}},
                400,
                allow=ALLOW_POST,
            )
        with store.lock:
            try:
                check_member_ids(ids, store)
            except FieldError as err:
                return api_response(
                    {"errors": {"project_member_ids": [str(err)]}}, 400, allow=ALLOW_POST
                )
    else:
        ids = [caller.pmid or ""]
    for pmid in dict.fromkeys(ids):
        leave_project(app, pmid, erasure_requested=False)
    return api_response("success", allow=ALLOW_POST)
