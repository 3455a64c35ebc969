"""The deauth webhook Open Humans calls, and what leaving means here (the deletion policy).

Incoming (:func:`deauth`, also importable as its documented name ``openhumans.views.deauth``):
the signature is checked over the raw body in constant time, the member is marked
deauthorized, ``member_deauth`` is sent, then the member is deleted or kept as the settings
say. Outgoing (OPENHUMANS_DEAUTH_ON_DELETE): deleting a member who has not left tells Open
Humans after the delete commits. The notice is recorded in the deleting transaction and sent
by ``transaction.on_commit``, so no network call ever runs inside the delete, an outage
never blocks it, and a failed notice stays for ``manage.py openhumans_retry_deauth``. A
member marked ``oh_deauth`` already left: deleting them owes Open Humans nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .conf import get_setting
from .models import OpenHumansMember, PendingDeauthNotice
from .signals import member_deauth

__all__ = ["SIGNATURE_HEADER", "deauth", "deauth_on_delete", "send_notice"]

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-OpenHumans-Webhooks-Signature"
_MEMBER_ID = re.compile(r"\A[\x21-\x7e]{1,16}\Z")


# -- incoming: the webhook -----------------------------------------------------------------


def _parse_deauth(body: bytes, *, legacy: bool) -> tuple[str, bool] | None:
    """Return (project_member_id, erasure_requested) from a webhook body, None if malformed."""
    try:
        payload = json.loads(body)
        if legacy and isinstance(payload, str):
            # spec §3.3: the unsigned fallback POST is a JSON string holding the JSON payload.
            payload = json.loads(payload)
    except (ValueError, RecursionError):  # deep nesting raises RecursionError
        return None
    if not isinstance(payload, dict):
        return None
    pmid, erasure = payload.get("project_member_id"), payload.get("erasure_requested")
    # Printable ASCII, as Open Humans' ids are (8 digits): a NUL would be a 500 on PostgreSQL.
    if not isinstance(pmid, str) or not _MEMBER_ID.match(pmid) or not isinstance(erasure, bool):
        return None
    return pmid, erasure


def _verify_signature(request: HttpRequest, secret: str) -> None:
    """Raise PermissionDenied (403) unless the body is signed with ``secret`` (spec §3.2)."""
    expected = "sha1=" + hmac.new(secret.encode("utf-8"), request.body, hashlib.sha1).hexdigest()
    given = request.headers.get(SIGNATURE_HEADER, "")
    if not hmac.compare_digest(given.encode("utf-8"), expected.encode("ascii")):
        logger.warning("deauth webhook refused: missing or wrong signature")
        raise PermissionDenied(f"{SIGNATURE_HEADER} failed to verify payload.")


@csrf_exempt
@require_POST
def deauth(request: HttpRequest) -> HttpResponse:
    """Receive and act on deauthorization notification from Open Humans.

    With OPENHUMANS_WEBHOOK_SECRET, a missing or wrong signature raises PermissionDenied
    (403). Malformed body: 400. Sends ``member_deauth``, then deletes the member (erasure
    requested and OPENHUMANS_DELETE_ON_ERASURE, or OPENHUMANS_DELETE_ON_DEAUTH) or marks it
    ``oh_deauth``. An unknown member, or a repeated delivery, is answered 200.
    """
    secret = get_setting("OPENHUMANS_WEBHOOK_SECRET")
    if secret:
        _verify_signature(request, secret)
    parsed = _parse_deauth(request.body, legacy=not secret)
    if parsed is None:
        logger.warning("deauth webhook refused: malformed body")
        return HttpResponse("Malformed deauthorization payload.", status=400)
    pmid, erasure_requested = parsed
    member = OpenHumansMember.objects.filter(oh_id=pmid).first()
    if member is None:
        logger.info("deauth webhook for unknown member %r (already gone?)", pmid)
        return HttpResponse("Received")
    delete = get_setting("OPENHUMANS_DELETE_ON_DEAUTH") or (
        erasure_requested and get_setting("OPENHUMANS_DELETE_ON_ERASURE")
    )
    already_left = member.oh_deauth  # a repeated delivery is not signalled again
    with transaction.atomic():
        # Marked first: the member already left Open Humans, so the deletion below (or one
        # a receiver makes) sends them no notice back (see deauth_on_delete).
        OpenHumansMember.objects.filter(pk=pmid).update(oh_deauth=True)
        member.oh_deauth = True
        if not already_left:
            member_deauth.send(
                sender=OpenHumansMember,
                open_humans_member=member,
                erasure_requested=erasure_requested,
            )
        if delete:
            OpenHumansMember.objects.filter(pk=pmid).delete()
    logger.info(
        "member %s left Open Humans (erasure requested: %s): %s",
        pmid,
        erasure_requested,
        "deleted" if delete else "marked deauthorized",
    )
    return HttpResponse("Received")


# -- outgoing: deauth on delete --------------------------------------------------------------


def send_notice(notice_id: int) -> None:
    """Send one pending notice if it still exists; failures stay queued."""
    notice = PendingDeauthNotice.objects.filter(pk=notice_id).first()
    if notice is not None:
        notice.send()


@receiver(post_delete, sender=OpenHumansMember, dispatch_uid="openhumans_deauth_on_delete")
def deauth_on_delete(sender: Any, instance: OpenHumansMember, using: str, **kwargs: Any) -> None:
    """Queue a remove-members notice for a deleted member and send it after commit."""
    if instance.oh_deauth or not get_setting("OPENHUMANS_DEAUTH_ON_DELETE"):
        return
    notice = PendingDeauthNotice.objects.using(using).create(
        project_member_id=instance.oh_id,
        access_token=instance.access_token,
        refresh_token=instance.refresh_token,
        token_expires=instance.token_expires,
    )
    transaction.on_commit(lambda: send_notice(notice.pk), using=using, robust=True)
