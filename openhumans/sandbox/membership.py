"""Which member a call acts on, and a member leaving the project (spec §A.5, §2.5, §3)."""

from __future__ import annotations

from typing import Any

from . import webhook_sender
from .api_auth import Caller
from .form_fields import FieldError, clean_char
from .responses import HTTPError, api_response
from .state import Store

MEMBER_INVALID = {"project_member_id": "project_member_id is invalid"}


def caller_member(store: Store, caller: Caller, body: Any, *, allow: str) -> dict[str, Any]:
    """The member an upload/delete/complete acts on (spec §A.5); raises the 400 answers.

    A master token names the member in the form's ``project_member_id``: missing, it is the
    form's list-valued error (spec §6, ``complete/`` included); unknown or inactive, the
    view's plain-string one.
    """
    if caller.is_master:
        try:
            pmid = clean_char(body.get("project_member_id"))
        except FieldError as err:
            raise HTTPError(
                api_response({"project_member_id": [str(err)]}, 400, allow=allow)
            ) from None
    else:
        pmid = caller.pmid
    member = store.members.get(pmid or "")
    if not store.is_authorized(member):
        raise HTTPError(api_response(MEMBER_INVALID, 400, allow=allow))
    assert member is not None
    return member


def leave_project(store: Store, pmid: str, erasure_requested: bool) -> list[dict[str, Any]]:
    """Revoke, delete the member's tokens, then send the webhook synchronously.

    The webhook goes out with the store unlocked: the project's handler may call back.
    """
    with store.lock:
        store.revoke_member(pmid, erasure_requested)
        erasure = store.members[pmid]["erasure_requested"]
        url = store.config.get("webhook_url") or ""
        secret = store.config.get("webhook_secret") or ""
        now = store.now_iso()
    if not webhook_sender.is_valid_webhook_url(url):
        return []
    deliveries = webhook_sender.deliver(url, secret, pmid, erasure, now)
    with store.lock:
        store.webhooks.extend(deliveries)
        store.changed()
    return deliveries
