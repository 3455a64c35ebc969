"""The deauth webhook Open Humans calls, and what leaving means here (the deletion policy).

Incoming (:func:`deauth`, also importable as its documented name
``openhumans.views.deauth``): the signature is checked over the raw body in constant time
(without a secret, Open Humans is asked to confirm the notice instead), a notice older than
the member's last login is ignored as a replay, the member is marked deauthorized,
``member_deauth`` is sent, then the member is deleted or kept as the settings say. Outgoing
(OPENHUMANS_DEAUTH_ON_DELETE): deleting a member who has not left tells Open Humans after
the delete commits. The notice is recorded in the deleting transaction and sent by
``transaction.on_commit``, so no network call ever runs inside the delete, an outage never
blocks it, and a failed notice stays for ``manage.py openhumans_retry_deauth``. A member
marked ``oh_deauth`` already left: deleting them owes Open Humans nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models.signals import pre_delete
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_POST

from .conf import get_setting
from .db import lock_for_write
from .exceptions import InvalidTokenError, MemberDeauthorizedError, OpenHumansError
from .models import OpenHumansMember
from .outbox import queue_deauth
from .signals import member_deauth
from .tokens import client_for, still_in_project

__all__ = ["SIGNATURE_HEADER", "deauth", "deauth_on_delete"]

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-OpenHumans-Webhooks-Signature"
_MEMBER_ID = re.compile(r"\A[\x21-\x7e]{1,16}\Z")


# -- incoming: the webhook -----------------------------------------------------------------


def _parse_deauth(body: bytes, *, legacy: bool) -> tuple[str, bool, datetime | None] | None:
    """Return (project_member_id, erasure_requested, timestamp) from a body; None if malformed."""
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
    stamp = payload.get("timestamp")
    if stamp is None:
        return pmid, erasure, None
    try:
        # spec §3.2: ISO 8601 with a +00:00 offset; a naive one is taken as UTC.
        when = datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
    except ValueError:
        when = None
    if when is None:
        return None
    if timezone.is_naive(when):
        when = when.replace(tzinfo=UTC)
    return pmid, erasure, when


#: Clock skew allowed between Open Humans and us when telling a replay from a real notice.
REPLAY_SKEW = timedelta(seconds=60)


def _predates_authorization(member: OpenHumansMember, when: datetime | None) -> bool:
    """Whether a notice stamped ``when`` is older than the member's last authorization."""
    if when is None or member.authorized_at is None:
        return False
    authorized = member.authorized_at
    if timezone.is_naive(authorized):  # USE_TZ = False: stored in the default time zone
        authorized = timezone.make_aware(authorized)
    return when < authorized - REPLAY_SKEW


@sensitive_variables()
def _left_open_humans(member: OpenHumansMember) -> bool | None:
    """Confirm an unsigned notice: True if the member left, False if not, None if unknown.

    With OPENHUMANS_MASTER_TOKEN, Open Humans' member list says; otherwise the member's own
    token does: while it (or a refresh of it) still works, they did not leave.
    """
    listed = still_in_project(member.oh_id)
    if listed is not None:
        return not listed
    current = OpenHumansMember.objects.filter(pk=member.pk).first()
    if current is None:
        return True
    token = current.access_token
    try:
        for _attempt in range(2):
            try:
                client_for(token).exchange_member()
                return False  # their token works: they are still in the project
            except InvalidTokenError:
                # Dead: they left, or it was rotated since we read it; refresh once to see.
                token = current._access_token(None, None, force=False, stale_token=token)
    except MemberDeauthorizedError:
        return True  # no token of theirs works any more: they left
    except OpenHumansError as err:
        logger.warning("could not confirm the deauth notice of %s: %s", member.oh_id, err)
        return None
    return None


def _verify_signature(request: HttpRequest, secret: str) -> None:
    """Raise PermissionDenied (403) unless the body is signed with ``secret``."""
    expected = "sha1=" + hmac.new(secret.encode("utf-8"), request.body, hashlib.sha1).hexdigest()
    given = request.headers.get(SIGNATURE_HEADER, "")
    if not hmac.compare_digest(given.encode("utf-8"), expected.encode("ascii")):
        logger.warning("deauth webhook refused: missing or wrong signature")
        raise PermissionDenied(f"{SIGNATURE_HEADER} failed to verify payload.")


@csrf_exempt
@login_not_required  # Open Humans has no session (Django 5.1+ LoginRequiredMiddleware)
@require_POST
def deauth(request: HttpRequest) -> HttpResponse:
    """Receive and act on deauthorization notification from Open Humans.

    With OPENHUMANS_WEBHOOK_SECRET, a missing or wrong signature raises PermissionDenied
    (403); without it, an unsigned notice is acted on only once Open Humans confirms it (the
    member's token no longer works, or the master token's member list lacks them), else it
    is ignored (200), and 503 when it cannot be told. A notice stamped before the member
    last authorized is a replay: ignored (200). Malformed body: 400. Sends
    ``member_deauth``, then deletes the member (erasure requested and
    OPENHUMANS_DELETE_ON_ERASURE, or OPENHUMANS_DELETE_ON_DEAUTH) or marks it ``oh_deauth``.
    An unknown member, or a repeated delivery, is answered 200.
    """
    secret = get_setting("OPENHUMANS_WEBHOOK_SECRET")
    if secret:
        _verify_signature(request, secret)
    parsed = _parse_deauth(request.body, legacy=not secret)
    if parsed is None:
        logger.warning("deauth webhook refused: malformed body")
        return HttpResponse("Malformed deauthorization payload.", status=400)
    pmid, erasure_requested, when = parsed
    member = OpenHumansMember.objects.filter(oh_id=pmid).first()
    if member is None:
        logger.info("deauth webhook for unknown member %r (already gone?)", pmid)
        return HttpResponse("Received")
    if _predates_authorization(member, when):
        logger.warning("deauth webhook for %s ignored: older than their last login", pmid)
        return HttpResponse("Received")
    if not secret:
        left = _left_open_humans(member)
        if left is None:
            # Not confirmed either way: a non-2xx makes Open Humans post it again (spec §3.3).
            return HttpResponse("Could not confirm the notice with Open Humans.", status=503)
        if not left:
            logger.warning("unsigned deauth webhook for %s ignored: they did not leave", pmid)
            return HttpResponse("Received")
    delete = get_setting("OPENHUMANS_DELETE_ON_DEAUTH") or (
        erasure_requested and get_setting("OPENHUMANS_DELETE_ON_ERASURE")
    )
    with transaction.atomic():
        lock_for_write(OpenHumansMember)  # SQLite: the write lock before the read
        current = OpenHumansMember.objects.select_for_update().filter(pk=pmid).first()
        if current is None or _predates_authorization(current, when):
            return HttpResponse("Received")  # gone meanwhile, or logged in again since
        already_left = current.oh_deauth  # a repeated delivery is not signalled again
        # Marked first: the member already left Open Humans, so the deletion below (or one
        # a receiver makes) sends them no notice back (see deauth_on_delete).
        OpenHumansMember.objects.filter(pk=pmid).update(oh_deauth=True, needs_reauthorization=False)
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


@receiver(pre_delete, sender=OpenHumansMember, dispatch_uid="openhumans_deauth_on_delete")
@sensitive_variables()
def deauth_on_delete(sender: Any, instance: OpenHumansMember, using: str, **kwargs: Any) -> None:
    """Queue a remove-members notice for a member being deleted, in the outbox.

    Written in the deleting transaction (gone if it rolls back), delivered after the commit.
    The tokens come from the member's row, locked in the deleting transaction, not from the
    instance being deleted: another request may have rotated the pair since that instance
    was loaded, and a notice with a dead pair would be dropped.
    """
    if not get_setting("OPENHUMANS_DEAUTH_ON_DELETE"):
        return
    lock_for_write(OpenHumansMember, using)
    current = (
        OpenHumansMember.objects.using(using).select_for_update().filter(pk=instance.pk).first()
    )
    if current is None or current.oh_deauth:
        return  # already deleted meanwhile, or the member left (nothing owed)
    queue_deauth(current, using=using)
