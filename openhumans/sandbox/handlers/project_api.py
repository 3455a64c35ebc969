"""The project API's member endpoints (spec §2.1–§2.5); uploads are in project_files.py."""

from __future__ import annotations

import re
from typing import Any

from werkzeug.wrappers import Request, Response

from ..api_endpoint import READ, WRITE, ApiCall, api_endpoint
from ..form_fields import FieldError, check_member_ids, checkbox, clean_char, split_member_ids
from ..membership import MEMBER_INVALID, leave_project
from ..pagination import host_url, paginate
from ..responses import api_response, server_error
from ..serializers import file_json, shows_username, source_project_id
from ..state import Store, api_datetime

MEMBERS_FILES_SHOWN = 10  # spec §2.3: at most 10 files per member item
MESSAGE_PREFIX = "[Open Humans Project Message] "
_PMID_TOKEN = re.compile(r"\{\{\s*PROJECT_MEMBER_ID\s*\}\}")


# --- §2.1 project ---


@api_endpoint("Project Data", methods=READ)
def project(store: Store, request: Request, call: ApiCall) -> Response:
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


@api_endpoint("Project Member Exchange", methods=READ)
def exchange_member(store: Store, request: Request, call: ApiCall) -> Response:
    caller = call.who
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
        if shows_username(store, member):
            body["username"] = member["username"]
        body["data"] = [file_json(store, f, base) for f in files[offset : offset + limit]]
    return api_response(body)


# --- §2.3 members ---


@api_endpoint("Project Members", methods=READ, auth="master")
def members(store: Store, request: Request, call: ApiCall) -> Response:
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
            if shows_username(store, member):
                item["username"] = member["username"]
            item["data"] = [file_json(store, f, base) for f in files[:MEMBERS_FILES_SHOWN]]
            results.append(item)
    return api_response(
        {"count": len(active), "next": next_url, "previous": previous_url, "results": results}
    )


# --- §2.4 message ---


@api_endpoint("Project Message", methods=WRITE)
def message(store: Store, request: Request, call: ApiCall) -> Response:
    caller, body = call.who, call.body
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
            return api_response({"errors": errors}, 400, allow=call.allow)
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
    return api_response("success", allow=call.allow)


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


@api_endpoint("Project Remove Members", methods=WRITE)
def remove_members(store: Store, request: Request, call: ApiCall) -> Response:
    caller, body = call.who, call.body
    if caller.is_master:
        ids = split_member_ids(body.get("project_member_ids"))
        if not ids:
            return api_response(
                {"errors": {"__all__": ["You must provide a list of project member IDs."]}},
                400,
                allow=call.allow,
            )
        with store.lock:
            try:
                check_member_ids(ids, store)
            except FieldError as err:
                return api_response(
                    {"errors": {"project_member_ids": [str(err)]}}, 400, allow=call.allow
                )
    else:
        ids = [caller.pmid or ""]
    for pmid in dict.fromkeys(ids):
        leave_project(store, pmid, erasure_requested=False)
    return api_response("success", allow=call.allow)
