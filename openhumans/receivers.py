"""Deauth on delete (OPENHUMANS_DEAUTH_ON_DELETE): tell Open Humans after the delete commits.

The notice is recorded in the deleting transaction and sent by ``transaction.on_commit``, so
no network call ever runs inside the delete, an outage never blocks it, and a failed notice
stays in the database for ``manage.py openhumans_retry_deauth``.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from typing import Any

from django.db import transaction
from django.db.models.signals import pre_delete
from django.dispatch import receiver
from django.views.decorators.debug import sensitive_variables

from .conf import get_setting
from .db import lock_for_write
from .models import OpenHumansMember, PendingDeauthNotice

logger = logging.getLogger(__name__)

_suppressed: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "openhumans_deauth_notice_suppressed", default=False
)


@contextlib.contextmanager
def no_deauth_notice() -> Iterator[None]:
    """Within this block, deleting members sends Open Humans nothing (they already left)."""
    token = _suppressed.set(True)
    try:
        yield
    finally:
        _suppressed.reset(token)


def send_notice(notice_id: int) -> None:
    """Send one pending notice if it still exists; failures stay queued."""
    notice = PendingDeauthNotice.objects.filter(pk=notice_id).first()
    if notice is not None:
        notice.send()


@receiver(pre_delete, sender=OpenHumansMember, dispatch_uid="openhumans_deauth_on_delete")
@sensitive_variables()
def deauth_on_delete(sender: Any, instance: OpenHumansMember, using: str, **kwargs: Any) -> None:
    """Queue a remove-members notice for a member being deleted; send it after commit.

    The tokens come from the member's row, locked in the deleting transaction, not from the
    instance being deleted: another request may have rotated the pair since that instance
    was loaded, and a notice with a dead pair would be dropped.
    """
    if _suppressed.get() or not get_setting("OPENHUMANS_DEAUTH_ON_DELETE"):
        return
    lock_for_write(OpenHumansMember, using)
    current = (
        OpenHumansMember.objects.using(using).select_for_update().filter(pk=instance.pk).first()
    )
    if current is None or current.oh_deauth:
        return  # already deleted meanwhile, or the member left (nothing owed)
    notice = PendingDeauthNotice.objects.using(using).create(
        project_member_id=current.oh_id,
        access_token=current.access_token,
        refresh_token=current.refresh_token,
        token_expires=current.token_expires,
    )
    transaction.on_commit(lambda: send_notice(notice.pk), using=using, robust=True)
